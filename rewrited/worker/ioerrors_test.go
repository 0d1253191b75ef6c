package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/spool"
)

// faulty fails the k-th call of one kind with an I/O error, and notes a
// file fsync retried after it failed (never allowed: after a failed fsync
// the page cache may have dropped the data, "fsyncgate").
type faulty struct {
	spool.OS
	kind    string
	k, n    int
	hit     bool
	failed  map[*os.File]bool // open files whose fsync failed
	retried int
}

func (f *faulty) fail(kind string) error {
	if kind != f.kind {
		return nil
	}
	f.n++
	if f.n != f.k {
		return nil
	}
	f.hit = true
	if kind == "create" || kind == "syncfile" {
		return syscall.ENOSPC
	}
	return syscall.EIO
}

func (f *faulty) Create(p string) (*os.File, error) {
	if err := f.fail("create"); err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return f.OS.Create(p)
}

func (f *faulty) SyncFile(file *os.File) error {
	if f.failed[file] {
		f.retried++
	}
	if err := f.fail("syncfile"); err != nil {
		f.failed[file] = true
		return err
	}
	return f.OS.SyncFile(file)
}

func (f *faulty) RenameNoReplace(a, b string) error {
	if err := f.fail("rename"); err != nil {
		return &os.LinkError{Op: "rename", Old: a, New: b, Err: err}
	}
	return f.OS.RenameNoReplace(a, b)
}

func (f *faulty) Rename(a, b string) error {
	if err := f.fail("replace"); err != nil {
		return &os.LinkError{Op: "rename", Old: a, New: b, Err: err}
	}
	return f.OS.Rename(a, b)
}

func (f *faulty) SyncDir(d string) error {
	if err := f.fail("syncdir"); err != nil {
		return &spool.DirSyncError{Dir: d, Err: err}
	}
	return f.OS.SyncDir(d)
}

// TestIOErrors injects ENOSPC or EIO into each kind of spool call, at each
// of its occurrences in turn, while rewrited routes four messages; a
// failed folder fsync makes it stop, as it must, and it is restarted. No
// message may be lost or left behind, and no failed fsync retried.
func TestIOErrors(t *testing.T) {
	msgs := []string{msg, strings.Replace(msg, "hi", "two", 1), strings.Replace(msg, "hi", "three", 1), "junk\r\n"}
	injected, lost, retried, exits := 0, 0, 0, 0
	for _, kind := range []string{"create", "syncfile", "rename", "replace", "syncdir"} {
		for k := 1; ; k++ {
			w := setup(t, "office")
			w.Backoff = 0
			var ids []string
			for _, m := range msgs {
				id := spool.NewID()
				ids = append(ids, id)
				drop(t, w, id+".eml", m)
			}
			f := &faulty{kind: kind, k: k, failed: map[*os.File]bool{}}
			w.S.SetFS(f)
			err := w.Run(context.Background(), true)
			if !f.hit {
				break
			}
			injected++
			if err != nil {
				var dse *spool.DirSyncError
				if !errors.As(err, &dse) {
					t.Errorf("%s #%d: stopped on %v", kind, k, err)
				}
				exits++
			}
			retried += f.retried
			if n := restartAndCount(t, w, ids, msgs); n != "" {
				lost++
				t.Errorf("%s #%d: %s", kind, k, n)
			}
		}
	}
	t.Logf("ioerrors: injected=%d lost=%d fsync_retried=%d exits_on_dirsync=%d", injected, lost, retried, exits)
	if injected < 20 || retried > 0 {
		t.Fatalf("injected %d, fsync retried %d", injected, retried)
	}
}

// restartAndCount runs rewrited again on the same spool with the real
// file system, as a restart would, and says what is missing.
func restartAndCount(t *testing.T, w *Worker, ids, msgs []string) string {
	root := w.S.Root
	w.S.Close()
	s, err := spool.Open(root, "rewrited", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w2 := New(s, w.Cfg, zerolog.Nop())
	w2.Backoff = 0
	if err := w2.Recover(context.Background()); err != nil {
		return "recover: " + err.Error()
	}
	if err := w2.Run(context.Background(), true); err != nil {
		return "run: " + err.Error()
	}
	for i, id := range ids {
		if n := copies(root, id, msgs[i]); n != 1 {
			return fmt.Sprintf("message %d has %d copies", i, n)
		}
	}
	for _, d := range []string{"incoming", "tmp/rewrited"} {
		entries, _ := os.ReadDir(filepath.Join(root, d))
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				return d + " not empty: " + e.Name()
			}
		}
	}
	return ""
}
