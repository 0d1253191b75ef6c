//go:build unix

package worker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"example.org/popspool/shared/spool"
)

// A file swapped for a symlink or a FIFO between the scan and the claim
// is neither followed nor blocked on: the entry goes to failed/ as it is
// (3017), and the target's content is never routed (issue 16.5; before,
// the symlink's target was routed into pickup/).
func TestSwappedEntriesGoToFailedAsTheyAre(t *testing.T) {
	w := setup(t, "office")
	secret := filepath.Join(t.TempDir(), "secret.eml")
	os.WriteFile(secret, []byte(msg), 0o600)
	link, fifo, good := spool.NewID(), spool.NewID(), spool.NewID()
	in := w.S.Dir(spool.Incoming)
	if err := os.Symlink(secret, filepath.Join(in, link+".eml")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(in, fifo+".eml"), 0o600); err != nil {
		t.Fatal(err)
	}
	drop(t, w, good+".eml", msg)
	// The names as a scan that ran before the swap would have listed them.
	if err := w.handleBatch(context.Background(), []string{link + ".eml", fifo + ".eml", good + ".eml"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		mode os.FileMode
	}{{link, os.ModeSymlink}, {fifo, os.ModeNamedPipe}} {
		fi, err := os.Lstat(filepath.Join(w.S.Dir(spool.Failed), c.id+".eml"))
		if err != nil || fi.Mode().Type() != c.mode {
			t.Errorf("%v not in failed/ as it is: %v %v", c.mode, fi, err)
		}
	}
	pick, _ := os.ReadDir(w.S.Dir(spool.Pickup))
	if len(pick) != 1 || pick[0].Name() != good+".eml" {
		t.Fatalf("pickup/ holds %v, want only the regular file", pick)
	}
	// The good file's original was kept as a spare inode.
	w.S.DropSpares()
	if left, _ := os.ReadDir(w.S.TmpDir()); len(left) > 1 { // the lock
		t.Errorf("tmp/rewrited holds %v", left)
	}
}

// A file rewrited may not read (copied in by another user) goes to
// failed/ as it is after three tries instead of going round for ever.
func TestUnreadableFileGoesToFailedAfterThreeTries(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads a file of mode 0000; this test needs an ordinary user")
	}
	w := setup(t, "office")
	w.Backoff = 0
	id := spool.NewID()
	drop(t, w, id+".eml", msg)
	os.Chmod(filepath.Join(w.S.Dir(spool.Incoming), id+".eml"), 0)
	for i := range unreadableTries {
		if err := w.handleBatch(context.Background(), []string{id + ".eml"}); err != nil {
			t.Fatal(err)
		}
		_, err := os.Stat(filepath.Join(w.S.Dir(spool.Failed), id+".eml"))
		if done := err == nil; done != (i == unreadableTries-1) {
			t.Fatalf("try %d: in failed/ %v", i+1, done)
		}
	}
	if b, err := os.ReadFile(filepath.Join(w.S.Dir(spool.Failed), id+".eml")); err == nil && !strings.HasSuffix(string(b), msg) {
		t.Errorf("content changed")
	}
}
