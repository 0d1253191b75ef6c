package maildir

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"example.org/popspool/shared/spool"
)

// slowSyncs is the real file system with slow folder fsyncs, logging when
// each rename happened and when each fsync of new/ began and ended.
type slowSyncs struct {
	spool.OS
	mu     sync.Mutex
	clock  int
	rename map[string]int // new/ name -> tick of its rename
	syncs  [][2]int       // new/ fsyncs: [begin, end] ticks
}

func (s *slowSyncs) tick() int { s.clock++; return s.clock }

func (s *slowSyncs) RenameNoReplace(oldpath, newpath string) error {
	err := s.OS.RenameNoReplace(oldpath, newpath)
	s.mu.Lock()
	s.rename[filepath.Base(newpath)] = s.tick()
	s.mu.Unlock()
	return err
}

func (s *slowSyncs) SyncDir(dir string) error {
	if filepath.Base(dir) != "new" {
		return s.OS.SyncDir(dir)
	}
	s.mu.Lock()
	begin := s.tick()
	s.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	err := s.OS.SyncDir(dir)
	s.mu.Lock()
	s.syncs = append(s.syncs, [2]int{begin, s.tick()})
	s.mu.Unlock()
	return err
}

// TestConcurrentDeliveriesShareFolderSyncs: sixteen deliveries into one
// Maildir at once share new/'s fsyncs, and each returns only after an
// fsync that began after its own rename has ended.
func TestConcurrentDeliveriesShareFolderSyncs(t *testing.T) {
	fs := &slowSyncs{rename: map[string]int{}}
	w := &Writer{FS: fs}
	box := filepath.Join(t.TempDir(), "alice")
	const n = 16
	returned := make([]int, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = spool.NewID()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.Deliver(box, ids[i], "", strings.NewReader("body\r\n"), false, true); err != nil {
				t.Error(err)
			}
			fs.mu.Lock()
			returned[i] = fs.tick()
			fs.mu.Unlock()
		}()
	}
	wg.Wait()
	if len(fs.syncs) >= n {
		t.Errorf("%d fsyncs of new/ for %d concurrent deliveries: none shared", len(fs.syncs), n)
	}
	for i, id := range ids {
		renamed := fs.rename[Name(id)]
		covered := false
		for _, s := range fs.syncs {
			covered = covered || (s[0] > renamed && s[1] < returned[i])
		}
		if !covered {
			t.Errorf("delivery %d (renamed at %d, returned at %d) had no fsync of new/ begun after its rename: %v", i, renamed, returned[i], fs.syncs)
		}
		if _, err := os.Stat(filepath.Join(box, "new", Name(id))); err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d deliveries, %d fsyncs of new/", n, len(fs.syncs))
}
