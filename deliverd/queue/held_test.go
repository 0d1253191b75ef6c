//go:build linux

package queue

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"example.org/popspool/deliverd/maildir"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/spool"
)

// heldCheck is the real file system, failing the test when the spool
// removes or renames a file this process still has open: Windows refuses
// both for an open file, so the queue must close a claimed file before it
// moves it. Linux does them, and /proc/self/fd shows what is open.
type heldCheck struct {
	spool.OS
	t     *testing.T
	mu    sync.Mutex
	moves int
}

func (h *heldCheck) check(op string, paths ...string) {
	h.mu.Lock()
	h.moves++
	h.mu.Unlock()
	for _, p := range paths {
		if openHere(p) {
			h.t.Errorf("%s %s while it is open", op, p)
		}
	}
}

func (h *heldCheck) Remove(path string) error {
	h.check("remove", path)
	return h.OS.Remove(path)
}

func (h *heldCheck) Rename(oldpath, newpath string) error {
	h.check("rename", oldpath, newpath)
	return h.OS.Rename(oldpath, newpath)
}

func (h *heldCheck) RenameNoReplace(oldpath, newpath string) error {
	h.check("rename", oldpath, newpath)
	return h.OS.RenameNoReplace(oldpath, newpath)
}

// openHere reports whether a descriptor of this process names path.
func openHere(path string) bool {
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && l == path {
			return true
		}
	}
	return false
}

// heldOpen counts this process's descriptors of files in dir, its
// .lock left out.
func heldOpen(dir string) int {
	n := 0
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && filepath.Dir(l) == dir && filepath.Base(l) != ".lock" {
			n++
		}
	}
	return n
}

// TestClaimedFileClosedBeforeItMoves: whatever becomes of a claimed file
// (delivered and removed, deferred and rewritten, bounced into badmail/,
// delivered in a Maildir group, a group that panics, a file with nothing
// left to send, one for another lane), the queue has closed the
// descriptor it read the file through before the spool renames or
// removes it, and no descriptor is left open after the run.
func TestClaimedFileClosedBeforeItMoves(t *testing.T) {
	run := func(t *testing.T, tg Target, prep func(q *Queue)) *Queue {
		t.Helper()
		q := newQueue(t, tg)
		h := &heldCheck{t: t}
		q.S.SetFS(h)
		prep(q)
		if err := q.Run(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		if h.moves == 0 {
			t.Fatal("the spool moved nothing: the check saw nothing")
		}
		if n := heldOpen(q.S.TmpDir()); n != 0 {
			t.Fatalf("%d files of tmp/deliverd left open", n)
		}
		return q
	}
	t.Run("sent", func(t *testing.T) {
		run(t, &scripted{answers: map[string]string{"temp@l": "temp", "perm@l": "perm"}}, func(q *Queue) {
			put(t, q, spool.Pickup, "ok@l")
			put(t, q, spool.Pickup, "temp@l")
			put(t, q, spool.Pickup, "perm@l")
			put(t, q, spool.Pickup, "ok@l", "temp@l")
		})
	})
	t.Run("maildir group", func(t *testing.T) {
		root := t.TempDir()
		run(t, &Maildirs{Pattern: root + "/{user}"}, func(q *Queue) {
			for range 5 {
				put(t, q, spool.Pickup, "alice@l", "bob@l")
			}
		})
	})
	t.Run("group panic", func(t *testing.T) {
		root := t.TempDir()
		run(t, panicky{&Maildirs{Pattern: root + "/{user}"}}, func(q *Queue) {
			for range 3 {
				put(t, q, spool.Pickup, "alice@l")
			}
			id := put(t, q, spool.Pickup, "alice@l")
			p := filepath.Join(q.S.Dir(spool.Pickup), id+".eml")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), "<a@x>", "<poison@x>", 1)), 0o600)
		})
	})
	t.Run("nothing left to send", func(t *testing.T) {
		q := run(t, &scripted{}, func(q *Queue) {
			id := put(t, q, spool.Pickup, "done@l")
			q.Ledger.Start(id)
			q.Ledger.Accept(id, []string{"done@l"})
			put(t, q, spool.Pickup) // no X-Receiver line
		})
		if n := len(q.Target.(*scripted).jobs); n != 0 {
			t.Fatalf("%d sent", n)
		}
	})
}

// TestClaimedFileForAnotherLaneClosedBeforeItMoves: a claimed file whose
// X-Popspool-Target names another lane (changed since the scan) goes back
// to pickup/ closed.
func TestClaimedFileForAnotherLaneClosedBeforeItMoves(t *testing.T) {
	ls := newTestLanes(t, map[string]Target{config.DefaultTarget: &scripted{}, "other": &scripted{}}, nil, zerolog.Nop())
	q := ls.lead
	h := &heldCheck{t: t}
	q.S.SetFS(h)
	id := putFor(t, q.S, spool.Pickup, "other", "for-other", "o@l")
	ws, err := q.claim(spool.Pickup, []string{id + ".eml"})
	if err != nil || len(ws) != 1 {
		t.Fatalf("claimed %d: %v", len(ws), err)
	}
	if p, err := q.prepare(ws[0]); p != nil || err != nil {
		t.Fatalf("prepared %v, %v", p, err)
	}
	if _, err := os.Stat(filepath.Join(q.S.Dir(spool.Pickup), id+".eml")); err != nil {
		t.Fatal(err)
	}
	if n := heldOpen(q.S.TmpDir()); n != 0 {
		t.Fatalf("%d files of tmp/deliverd left open", n)
	}
}

// renamer renames a new version of each claimed file over its path (as
// an operator's editor saving into tmp/deliverd would) before it reads
// the message, into Maildirs.
type renamer struct {
	*Maildirs
	t *testing.T
}

func (r renamer) SendBatch(ctx context.Context, jobs []Job) [][]Outcome {
	for _, j := range jobs {
		var b strings.Builder
		envelope.Envelope{Sender: "new@x", HasSender: true, Receivers: []string{"alice@l", "bob@l", "carol@l"}}.Write(&b)
		b.WriteString("From: new@x\r\nSubject: the new version\r\n\r\nnew body, longer than the old one\r\n")
		p := filepath.Join(filepath.Dir(j.Msg.Path), "."+j.ID+".edit")
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			r.t.Fatal(err)
		}
		if err := os.Rename(p, j.Msg.Path); err != nil {
			r.t.Fatal(err)
		}
	}
	return r.Maildirs.SendBatch(ctx, jobs)
}

func (r renamer) Send(ctx context.Context, j Job) ([]Outcome, error) {
	return r.SendBatch(ctx, []Job{j})[0], nil
}

// TestRenamedOverWhileHeldSendsOneVersion: a file renamed over a claimed
// file's path while deliverd holds it open does not reach the target:
// each copy is the version whose envelope was read, whole, to the
// recipients of that envelope, even with two copies read from one
// descriptor. (Reading the message by path again, as deliverd did before
// issue 12's i-deliver, sent the new bytes from the old offset.)
func TestRenamedOverWhileHeldSendsOneVersion(t *testing.T) {
	root := t.TempDir()
	q := newQueue(t, renamer{&Maildirs{Pattern: root + "/{user}"}, t})
	var ids []string
	for range 3 {
		ids = append(ids, put(t, q, spool.Pickup, "alice@l", "bob@l"))
	}
	if err := q.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		for _, u := range []string{"alice", "bob"} {
			b, err := os.ReadFile(filepath.Join(root, u, "new", maildir.Name(id)))
			if err != nil {
				t.Fatal(err)
			}
			if want := "Return-Path: <a@x>\r\nDelivered-To: " + u + "@l\r\n" + body; string(b) != want {
				t.Fatalf("%s got %q, want %q", u, b, want)
			}
		}
		if !q.Ledger.Delivered(id) {
			t.Fatalf("%s not recorded delivered", id)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "carol")); err == nil {
		t.Fatal("a recipient of the new version got a copy")
	}
	if n := heldOpen(q.S.TmpDir()); n != 0 {
		t.Fatalf("%d files of tmp/deliverd left open", n)
	}
}
