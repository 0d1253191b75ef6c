package queue

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.org/popspool/deliverd/maildir"
	"example.org/popspool/shared/spool"
)

// A recipient whose Maildir does not exist and may not be created is a
// permanent failure with the reason (issue 15.5); the others are
// delivered, and no folder is made.
func TestMissingMaildirIsPermanent(t *testing.T) {
	root := t.TempDir()
	q := newQueue(t, &Maildirs{Pattern: root + "/{user}", MayCreate: func(r string) bool { return r != "random@l" }})
	id := put(t, q, spool.Pickup, "alice@l", "random@l")
	q.Run(context.Background(), true)
	if _, err := os.Stat(filepath.Join(root, "alice", "new", maildir.Name(id))); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "random")); err == nil {
		t.Fatal("a Maildir was created for random@l")
	}
	env, _ := read(t, q, spool.Badmail, id)
	if len(env.Receivers) != 1 || env.Receivers[0] != "random@l" || !strings.Contains(env.LastError, "no Maildir "+filepath.Join(root, "random")) {
		t.Fatalf("badmail envelope %+v", env)
	}
}

// A crash between linking into new/ and removing the tmp/ copy leaves the
// copy; the retry that finds the delivery done removes it, and so does
// the sweep at start (issue 15.5). Files of other programs stay.
func TestMaildirTmpLeftoversRemoved(t *testing.T) {
	root := t.TempDir()
	m := &Maildirs{Pattern: root + "/{user}"}
	ids := []string{spool.NewID(), spool.NewID()}
	for _, id := range ids {
		if _, err := maildir.Deliver(filepath.Join(root, "alice"), id, "", strings.NewReader("x\r\n"), false, true); err != nil {
			t.Fatal(err)
		}
		name := maildir.Name(id)
		os.Link(filepath.Join(root, "alice", "new", name), filepath.Join(root, "alice", "tmp", name)) // as the crash left it
	}
	foreign := filepath.Join(root, "alice", "tmp", "1700000000.M1P2.host")
	os.WriteFile(foreign, []byte("x"), 0o600)
	if dup, err := maildir.Deliver(filepath.Join(root, "alice"), ids[0], "", strings.NewReader("x\r\n"), true, true); err != nil || !dup {
		t.Fatalf("retry: dup=%v %v", dup, err)
	}
	if _, err := os.Stat(filepath.Join(root, "alice", "tmp", maildir.Name(ids[0]))); err == nil {
		t.Fatal("the retry left the tmp/ copy")
	}
	if n := m.Sweep(); n != 1 {
		t.Fatalf("the sweep removed %d files, want 1", n)
	}
	left, _ := os.ReadDir(filepath.Join(root, "alice", "tmp"))
	if len(left) != 1 || left[0].Name() != filepath.Base(foreign) {
		t.Fatalf("tmp/ holds %v, want only the other program's file", left)
	}
}
