package queue

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"example.org/popspool/deliverd/ledger"
	"example.org/popspool/deliverd/maildir"
	"example.org/popspool/shared/spool"
)

// syncCount is the real file system, counting the durability calls into
// Maildirs.
type syncCount struct {
	spool.OS
	mu           sync.Mutex
	dirs         map[string]int // folder -> its fsyncs
	groups, file int
}

func (c *syncCount) SyncDir(dir string) error {
	c.mu.Lock()
	c.dirs[dir]++
	c.mu.Unlock()
	return c.OS.SyncDir(dir)
}

func (c *syncCount) SyncGroup(anchor *os.File, paths []string) error {
	c.mu.Lock()
	c.groups++
	c.mu.Unlock()
	return c.OS.SyncGroup(anchor, paths)
}

func (c *syncCount) SyncFile(f *os.File) error {
	c.mu.Lock()
	c.file++
	c.mu.Unlock()
	return c.OS.SyncFile(f)
}

// TestMaildirClaimIsOneGroup: 40 messages for two Maildirs, claimed in
// groups of 32 and 8, cost one data sync per group and one fsync of each
// Maildir's new/ and tmp/ per group, not per message; each message is in
// both Maildirs once.
func TestMaildirClaimIsOneGroup(t *testing.T) {
	root := t.TempDir()
	fs := &syncCount{dirs: map[string]int{}}
	q := newQueue(t, &Maildirs{Pattern: root + "/{user}", W: &maildir.Writer{FS: fs}})
	var ids []string
	for range 40 {
		ids = append(ids, put(t, q, spool.Pickup, "alice@l", "bob@l"))
	}
	if err := q.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		for _, id := range ids {
			if _, err := os.Stat(filepath.Join(root, u, "new", maildir.Name(id))); err != nil {
				t.Fatal(err)
			}
		}
		if all, _ := os.ReadDir(filepath.Join(root, u, "new")); len(all) != len(ids) {
			t.Fatalf("%s/new holds %d files for %d messages", u, len(all), len(ids))
		}
		for _, sub := range []string{"new", "tmp"} {
			if n := fs.dirs[filepath.Join(root, u, sub)]; n < 1 || n > 2 {
				t.Errorf("%s/%s fsynced %d times for two groups", u, sub, n)
			}
		}
	}
	if fs.groups != 2 || fs.file != 0 {
		t.Errorf("%d group syncs and %d file fsyncs for two groups, want 2 and 0", fs.groups, fs.file)
	}
	t.Logf("40 messages x 2 Maildirs: %d group syncs, folder fsyncs %v", fs.groups, fs.dirs)
}

// panicky delivers into Maildirs, but panics on a message from a
// "poison" sender, in a group or alone.
type panicky struct{ *Maildirs }

func (p panicky) SendBatch(ctx context.Context, jobs []Job) [][]Outcome {
	for _, j := range jobs {
		if strings.Contains(j.Sender, "poison") {
			panic("poisoned message " + j.ID)
		}
	}
	return p.Maildirs.SendBatch(ctx, jobs)
}

func (p panicky) Send(ctx context.Context, j Job) ([]Outcome, error) {
	return p.SendBatch(ctx, []Job{j})[0], nil
}

// TestGroupPanicSetsAsideOnlyItsFile: a panic while a group is delivered
// is no one file's fault; the group is delivered again one file at a
// time, the one that panics alone goes to badmail/, and every other
// message is delivered once.
func TestGroupPanicSetsAsideOnlyItsFile(t *testing.T) {
	root := t.TempDir()
	q := newQueue(t, panicky{&Maildirs{Pattern: root + "/{user}"}})
	var ids []string
	for range 6 {
		ids = append(ids, put(t, q, spool.Pickup, "alice@l"))
	}
	bad := ids[3]
	p := filepath.Join(q.S.Dir(spool.Pickup), bad+".eml")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), "<a@x>", "<poison@x>", 1)), 0o600)
	if err := q.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		_, err := os.Stat(filepath.Join(root, "alice", "new", maildir.Name(id)))
		if id == bad {
			if err == nil {
				t.Error("the poisoned message was delivered")
			}
			continue
		}
		if err != nil {
			t.Error(err)
		}
	}
	env, _ := read(t, q, spool.Badmail, bad)
	if !strings.Contains(env.LastError, "internal error while delivering: poisoned message") {
		t.Fatalf("badmail reason %q", env.LastError)
	}
	if left, _ := os.ReadDir(q.S.Dir(spool.Pickup)); len(left) != 0 {
		t.Fatalf("pickup/ keeps %d files", len(left))
	}
}

// ledgerWrites is the real file system, keeping each write of the ledger.
type ledgerWrites struct {
	spool.OS
	mu     sync.Mutex
	writes []string
}

func (w *ledgerWrites) Write(f *os.File, b []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, string(b))
	w.mu.Unlock()
	return w.OS.Write(f, b)
}

// TestGroupDeliveredIsOneLedgerWrite: the D records of a Maildir group's
// delivered files are written in one write, those of the files refused in
// the same group in none, and every delivered file is removed, every
// refused one in badmail/.
func TestGroupDeliveredIsOneLedgerWrite(t *testing.T) {
	root := t.TempDir()
	q := newQueue(t, &Maildirs{Pattern: root + "/{user}", MayCreate: func(r string) bool { return r != "ghost@l" }})
	w := &ledgerWrites{}
	l, err := ledger.OpenFS(filepath.Join(t.TempDir(), "deliverd.ledger"), w)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	q.Ledger = l
	var ok, refused []string
	for i := range 8 {
		if i%4 == 3 {
			refused = append(refused, put(t, q, spool.Pickup, "ghost@l"))
		} else {
			ok = append(ok, put(t, q, spool.Pickup, "alice@l"))
		}
	}
	if err := q.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	holding := 0
	for _, s := range w.writes {
		if strings.Contains(s, " D "+ok[0]+"\n") {
			holding++
			for _, id := range ok {
				if !strings.Contains(s, " D "+id+"\n") {
					t.Errorf("the D of %s is not in the group's write %q", id, s)
				}
			}
			for _, id := range refused {
				if strings.Contains(s, " D "+id+"\n") {
					t.Errorf("a D for the refused %s", id)
				}
			}
		}
	}
	if holding != 1 {
		t.Fatalf("%d writes hold the first D, want 1", holding)
	}
	for _, id := range ok {
		if _, err := os.Stat(filepath.Join(root, "alice", "new", maildir.Name(id))); err != nil || !l.Delivered(id) {
			t.Fatalf("%s: %v, delivered %v", id, err, l.Delivered(id))
		}
	}
	for _, id := range refused {
		if _, err := os.Stat(filepath.Join(q.S.Dir(spool.Badmail), id+".eml")); err != nil {
			t.Fatal(err)
		}
	}
	if left, _ := os.ReadDir(q.S.TmpDir()); len(left) != 1 { // .lock
		t.Fatalf("tmp/deliverd keeps %d entries", len(left))
	}
}
