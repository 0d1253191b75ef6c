package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"example.org/popspool/shared/event"
)

// Watcher tells a daemon when a folder may hold new work. fsnotify events
// are only hints: they can be lost (queue overflow, network shares, files
// dropped in while the daemon was down), so the folder listing is the truth
// and it is also rescanned periodically (notes/dependencies.md §4.3).
type Watcher struct {
	kick   chan struct{}
	rescan time.Duration
	fs     *fsnotify.Watcher
}

// Watch starts watching folders. It watches first and the caller scans
// after, so nothing dropped in between is missed. If fsnotify cannot watch
// (too many watches, an unsupported filesystem) the daemon polls.
func (s *Spool) Watch(ctx context.Context, rescan time.Duration, folders ...string) *Watcher {
	w := &Watcher{kick: make(chan struct{}, 1), rescan: rescan}
	fw, err := fsnotify.NewWatcher()
	if err == nil {
		for _, f := range folders {
			if err = fw.Add(s.Dir(f)); err != nil {
				break
			}
		}
	}
	if err != nil {
		event.Emit(&s.log, event.WatchFailed).Err(err).Dur("rescan", rescan).Msg("polling the folders instead")
		if fw != nil {
			fw.Close()
		}
		return w
	}
	w.fs = fw
	go w.pump(ctx, s)
	return w
}

func (w *Watcher) pump(ctx context.Context, s *Spool) {
	defer w.fs.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write) || ev.Has(fsnotify.Chmod) {
				w.Kick()
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				event.Emit(&s.log, event.WatchOverflow).Msg("too many changes at once; rescanning")
			} else {
				event.Emit(&s.log, event.WatchOverflow).Err(err).Msg("watch error; rescanning")
			}
			w.Kick()
		}
	}
}

// Kick asks for a scan as soon as the daemon waits next.
func (w *Watcher) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Wait returns when a folder changed, the rescan interval or max passed, or
// ctx ended (then it returns false).
func (w *Watcher) Wait(ctx context.Context, max time.Duration) bool {
	if max <= 0 || max > w.rescan {
		max = w.rescan
	}
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-w.kick:
		return true
	case <-t.C:
		return true
	}
}

// Ready lists the files of folder that can be taken now, oldest name first,
// and how long to wait for the ones not yet settled (0 if none). Dot-files
// (editors' and copy tools' temporaries), folders and other non-regular
// files are ignored. A file modified within Settle may still be being
// copied in by an operator and is left for a later scan.
//
// The folder is read readChunk entries at a time and only the names are
// kept, so a backlog costs its names in memory, not every entry and its
// stat at once: with 100,000 files waiting rewrited's peak heap went from
// 25 to 11 MiB (docs/benchmarks.md, "A backlog of 100,000 files"). All
// names are read before the first is taken: oldest first needs them all.
func (s *Spool) Ready(folder string) (names []string, wait time.Duration, err error) {
	dir := s.Dir(folder)
	f, err := openDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("scan %s: %w", dir, err)
	}
	defer f.Close()
	now := time.Now()
	for {
		entries, err := f.ReadDir(readChunk)
		for _, e := range entries {
			if w, ok := settled(e, now); ok {
				names = append(names, e.Name())
			} else if w > 0 && (wait == 0 || w < wait) {
				wait = w
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(entries) == 0) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("scan %s: %w", dir, err)
		}
	}
	sort.Strings(names)
	return names, wait, nil
}

// readChunk is how many folder entries Ready reads at a time.
const readChunk = 1024

// settled reports whether the entry is a file that can be taken now;
// when it is one still settling, wait is how long it has left.
func settled(e os.DirEntry, now time.Time) (wait time.Duration, ok bool) {
	if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
		return 0, false
	}
	fi, err := e.Info()
	if err != nil {
		return 0, false // vanished since the listing
	}
	// A future mtime (clock skew, a restored backup) counts as settled.
	if age := now.Sub(fi.ModTime()); age >= 0 && age < Settle {
		return Settle - age, false
	}
	return 0, true
}
