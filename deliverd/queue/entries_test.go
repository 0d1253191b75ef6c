//go:build unix

package queue

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"example.org/popspool/shared/liveness"
	"example.org/popspool/shared/spool"
)

// A pickup/ entry swapped for a symlink or a FIFO after the scan is moved
// to badmail/ as it is (4022); its target is never delivered, and the
// regular file beside it is (issue 16.5).
func TestSwappedEntriesGoToBadmailAsTheyAre(t *testing.T) {
	tg := &scripted{}
	q := newQueue(t, tg)
	other := filepath.Join(t.TempDir(), "other.eml")
	os.WriteFile(other, []byte("X-Receiver: <mallory@l>\r\n"+body), 0o600)
	link, fifo := spool.NewID(), spool.NewID()
	if err := os.Symlink(other, filepath.Join(q.S.Dir(spool.Pickup), link+".eml")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(q.S.Dir(spool.Pickup), fifo+".eml"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := put(t, q, spool.Pickup, "alice@l")
	beat := liveness.Register("test queue", time.Minute)
	defer beat.Close()
	// The names as a scan that ran before the swap would have listed them.
	if err := q.handleAll(context.Background(), beat, []string{link + ".eml", fifo + ".eml", good + ".eml"}, nil); err != nil {
		t.Fatal(err)
	}
	if tg.calls != 1 || tg.ids[good] != 1 {
		t.Fatalf("target got %d jobs %v, want only the regular file", tg.calls, tg.ids)
	}
	for _, c := range []struct {
		id   string
		mode os.FileMode
	}{{link, os.ModeSymlink}, {fifo, os.ModeNamedPipe}} {
		fi, err := os.Lstat(filepath.Join(q.S.Dir(spool.Badmail), c.id+".eml"))
		if err != nil || fi.Mode().Type() != c.mode {
			t.Errorf("%v not in badmail/ as it is: %v %v", c.mode, fi, err)
		}
	}
}
