//go:build linux

package spool

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// kicked reports whether w was kicked within d, and takes the kick.
func kicked(w *Watcher, d time.Duration) bool {
	select {
	case <-w.kick:
		return true
	case <-time.After(d):
		return false
	}
}

// TestWatchSkipsClaims: a file renamed out of the watched folder (a
// daemon's own claim) does not wake the daemon; one renamed in, one
// copied in (created, written, closed) and one touched do.
func TestWatchSkipsClaims(t *testing.T) {
	s := openTest(t, "rewrited")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := s.Watch(ctx, time.Hour, Incoming)
	if !w.on {
		t.Skip("the folder could not be watched here; the spool falls back to polling")
	}
	p := writePart(t, s, "x")
	if _, err := s.Move(p.Name(), Incoming, p.ID); err != nil {
		t.Fatal(err)
	}
	if !kicked(w, 5*time.Second) {
		t.Fatal("no kick for a file renamed into the folder")
	}
	if _, _, err := s.Claim(Incoming, p.ID+".eml"); err != nil {
		t.Fatal(err)
	}
	if kicked(w, 300*time.Millisecond) {
		t.Error("a claim (a rename out of the folder) kicked the daemon")
	}
	copied := filepath.Join(s.Dir(Incoming), "copied.eml")
	if err := os.WriteFile(copied, []byte("From: a@b\r\n\r\nx\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !kicked(w, 5*time.Second) {
		t.Fatal("no kick for a file copied into the folder")
	}
	kicked(w, 100*time.Millisecond) // the create's and the close's events may come in two reads
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(copied, old, old); err != nil {
		t.Fatal(err)
	}
	if !kicked(w, 5*time.Second) {
		t.Error("no kick for a file whose times were set back")
	}
}

// TestWatchStopsWithItsContext: the inotify descriptor is closed when
// the context ends (no descriptor is left behind by a reload).
func TestWatchStopsWithItsContext(t *testing.T) {
	s := openTest(t, "rewrited")
	before := openFDs(t)
	ctx, cancel := context.WithCancel(context.Background())
	w := s.Watch(ctx, time.Hour, Incoming)
	if !w.on {
		t.Skip("the folder could not be watched here")
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for openFDs(t) > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors open after the watch's context ended, %d before", openFDs(t), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	return len(entries)
}

func TestOverflowed(t *testing.T) {
	event := func(mask uint32, name string) []byte {
		b := make([]byte, unix.SizeofInotifyEvent+len(name))
		binary.NativeEndian.PutUint32(b[4:8], mask)
		binary.NativeEndian.PutUint32(b[12:16], uint32(len(name)))
		copy(b[unix.SizeofInotifyEvent:], name)
		return b
	}
	named := event(unix.IN_MOVED_TO, "01ABCDEF.eml\x00\x00\x00\x00")
	if overflowed(append(named, named...)) {
		t.Error("two renames read as an overflow")
	}
	if !overflowed(append(named, event(unix.IN_Q_OVERFLOW, "")...)) {
		t.Error("an overflow after a named event not found")
	}
	if overflowed(named[:10]) {
		t.Error("a short read read as an overflow")
	}
}
