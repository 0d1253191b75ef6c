package queue

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

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
