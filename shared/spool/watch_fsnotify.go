//go:build !linux

package spool

import (
	"context"
	"errors"

	"github.com/fsnotify/fsnotify"

	"example.org/popspool/shared/event"
)

// watch watches dirs with fsnotify and kicks w on every event that can
// mean new work: a file created or renamed in, written, or its mode or
// times changed.
func (s *Spool) watch(ctx context.Context, w *Watcher, dirs []string) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := fw.Add(d); err != nil {
			fw.Close()
			return err
		}
	}
	go pump(ctx, s, w, fw)
	return nil
}

func pump(ctx context.Context, s *Spool, w *Watcher, fw *fsnotify.Watcher) {
	defer fw.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-fw.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write) || ev.Has(fsnotify.Chmod) {
				w.Kick()
			}
		case err, ok := <-fw.Errors:
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
