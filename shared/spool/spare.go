package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"example.org/popspool/shared/crash"
)

// Spare inodes (docs/design-notes.md, "Spare inodes in rewrited"): a
// claimed original whose routed version has durably gone on is not
// unlinked but renamed to tmp/<daemon>/<n>.spare, and the next part of a
// group is written over it. On ext4 without a journal most of a new
// file's cost is the search for an inode not freed lately, and most of an
// unlink's is freeing one; a spare costs a rename instead of both.
//
// A spare is garbage under a name no daemon reads (Leftovers lists it
// with the others, which recovery removes). It is written over only once
// its rename is durable (SyncTmp after Retire): before that, a power cut
// could bring back the original's name over changed content. A part
// written into it leaves tmp/ only after its group's Sync, as any part.
type spares struct {
	mu     sync.Mutex
	list   []spare
	bytes  int64
	seq    int
	gen    int // of the next fsync of tmp/
	synced int // the spares of earlier generations are durably renamed
}

type spare struct {
	path string
	size int64
	gen  int // the fsync of tmp/ that makes its rename durable
}

// Limits of what spares may hold: a batch's worth of files (rewrited
// claims up to 128), and disk
// space held while the daemon is busy (DropSpares frees it when idle).
const (
	maxSpares     = 128
	maxSpareBytes = 64 << 20
)

// Retire removes a claimed original whose routed version has durably
// gone on, or keeps its inode as a spare: only a file that is the spool's
// alone (a regular file with one link, this process's user's, mode 0600:
// not an operator's copy, hard link or file of another owner), while the
// limits allow. The caller fsyncs tmp/ (SyncTmp) after retiring.
func (s *Spool) Retire(path string) error {
	if s.keepSpare(path) {
		return nil
	}
	return s.Unlink(path)
}

func (s *Spool) keepSpare(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || !spareable(fi) {
		return false
	}
	sp := &s.spares
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if len(sp.list) >= maxSpares || sp.bytes+fi.Size() > maxSpareBytes {
		return false
	}
	sp.seq++
	name := filepath.Join(s.TmpDir(), fmt.Sprintf("%d.spare", sp.seq))
	if err := s.fs.RenameNoReplace(path, name); err != nil {
		return false
	}
	crash.Point(s.Daemon + ".spool.retired")
	sp.list = append(sp.list, spare{path: name, size: fi.Size(), gen: sp.gen})
	sp.bytes += fi.Size()
	return true
}

// syncing starts an fsync of tmp/: the spares retired so far are ready
// to be written over once done(gen) says it succeeded.
func (sp *spares) syncing() (gen int) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.gen++
	return sp.gen - 1
}

func (sp *spares) done(gen int) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.synced = max(sp.synced, gen+1)
}

// take removes a ready spare from the list.
func (sp *spares) take() (spare, bool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for i := len(sp.list) - 1; i >= 0; i-- {
		if x := sp.list[i]; x.gen < sp.synced {
			sp.list = append(sp.list[:i], sp.list[i+1:]...)
			sp.bytes -= x.size
			return x, true
		}
	}
	return spare{}, false
}

// reuseSpare opens a ready spare as the part for id; nil and no error
// when there is none. A spare that cannot be opened is removed.
func (s *Spool) reuseSpare(id string) (*Part, error) {
	x, ok := s.spares.take()
	if !ok {
		return nil, nil
	}
	f, err := s.fs.Reuse(x.path)
	if err != nil {
		s.Unlink(x.path) // a new part is made instead; recovery removes what is left
		return nil, nil
	}
	return &Part{f: f, ID: id, fs: s.fs, daemon: s.Daemon, was: x.size}, nil
}

// Spares is how many spares the spool holds.
func (s *Spool) Spares() int {
	s.spares.mu.Lock()
	defer s.spares.mu.Unlock()
	return len(s.spares.list)
}

// DropSpares removes every spare: when the daemon is idle, so that no
// old message stays on the disk and no space stays held.
func (s *Spool) DropSpares() {
	s.spares.mu.Lock()
	list := s.spares.list
	s.spares.list, s.spares.bytes = nil, 0
	s.spares.mu.Unlock()
	for _, x := range list {
		s.Unlink(x.path) // one left behind is removed by the next recovery
	}
}
