//go:build linux

package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"example.org/popspool/shared/event"
)

// watchMask are the inotify events that can mean new work in a folder: a
// file created in it or renamed into it, one closed after writing (an
// operator's copy is complete), its mode or times changed (cp -p, touch).
// Not the renames out of it, which each daemon's own claims make, one a
// message, nor each write of a copy in progress: fsnotify watches for
// every event, and rewrited and deliverd were woken (a read, a channel
// send, a goroutine switch) for each of their own claims
// (docs/design-notes.md, "CPU per message").
const watchMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB

// watch watches dirs with one inotify instance, read by one goroutine
// that drains the queued events with each read and kicks w once for
// them, until ctx ends.
func (s *Spool) watch(ctx context.Context, w *Watcher, dirs []string) error {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("inotify_init1: %w", err)
	}
	for _, d := range dirs {
		if _, err := unix.InotifyAddWatch(fd, d, watchMask); err != nil {
			unix.Close(fd)
			return fmt.Errorf("watch %s: %w", d, err)
		}
	}
	f := os.NewFile(uintptr(fd), "inotify") // non-blocking: Go's poller waits for it
	stop := context.AfterFunc(ctx, func() { f.Close() })
	go func() {
		defer stop()
		defer f.Close()
		s.readEvents(f, w)
	}()
	return nil
}

// readEvents kicks w after each read of events until f is closed. A
// queue overflow is logged (the rescan that follows finds what was
// lost); another read error too, and then the daemon polls.
func (s *Spool) readEvents(f *os.File, w *Watcher) {
	buf := make([]byte, 16<<10)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if !isClosed(err) {
				event.Emit(&s.log, event.WatchOverflow).Err(err).Msg("watch error; polling from now on")
				w.Kick()
			}
			return
		}
		if overflowed(buf[:n]) {
			event.Emit(&s.log, event.WatchOverflow).Msg("too many changes at once; rescanning")
		}
		w.Kick()
	}
}

// overflowed reports whether the events in b (struct inotify_event, one
// after another) include a queue overflow.
func overflowed(b []byte) bool {
	for len(b) >= unix.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(b[4:8])
		if mask&unix.IN_Q_OVERFLOW != 0 {
			return true
		}
		b = b[min(len(b), unix.SizeofInotifyEvent+int(binary.NativeEndian.Uint32(b[12:16]))):]
	}
	return false
}

func isClosed(err error) bool { return errors.Is(err, os.ErrClosed) }
