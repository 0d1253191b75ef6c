package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"example.org/popspool/shared/crash"
)

// Group makes the data of several parts durable with one call (group
// commit of file data, docs/design-notes.md "Batch durability"): the
// parts are written and closed unsynced, Sync makes them all durable, and
// only then are they moved on. A part of a group must not leave tmp/
// before its group's Sync returned nil.
type Group struct {
	s      *Spool
	anchor *os.File // tmp/<daemon>, opened before the first part
	paths  []string
}

// NewGroup starts a group of parts.
func (s *Spool) NewGroup() *Group { return &Group{s: s} }

// Create opens a part for id in the group: a spare (Spool.Retire) to be
// written over, named <n>.spare, if there is one, else a new
// tmp/<daemon>/<id>.part. The part's Name says which.
func (g *Group) Create(id string) (*Part, error) {
	if g.anchor == nil {
		d, err := openDir(g.s.TmpDir())
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", g.s.TmpDir(), err)
		}
		g.anchor = d
	}
	p, err := g.s.reuseSpare(id)
	if p == nil && err == nil {
		p, err = g.s.Create(id)
	}
	if err != nil {
		return nil, err
	}
	p.group = g
	return p, nil
}

// Len is the number of closed parts waiting for Sync.
func (g *Group) Len() int { return len(g.paths) }

// Sync makes the data of every part closed in the group durable. After a
// failure the parts' content is unknown: the caller removes them and
// redoes the work from its durable source, never syncs them again.
func (g *Group) Sync() error {
	if len(g.paths) == 0 {
		return nil
	}
	err := g.s.fs.SyncGroup(g.anchor, g.paths)
	g.Release()
	if err != nil {
		return err
	}
	crash.Point(g.s.Daemon + ".spool.sealed")
	return nil
}

// Release forgets the group's parts (they stay on disk) and closes its
// anchor; the next Create starts a new group.
func (g *Group) Release() {
	if g.anchor != nil {
		g.anchor.Close()
		g.anchor = nil
	}
	g.paths = g.paths[:0]
}

// Close ends a part of a group: its mtime is set back by more than
// Settle, as Seal does, and it is closed unsynced; the group's Sync makes
// it durable.
func (p *Part) Close() error {
	name := p.Name()
	if p.group == nil {
		p.f.Close()
		return fmt.Errorf("close %s: not in a group", name)
	}
	if p.was > p.n {
		if err := p.fs.Truncate(p.f, p.n); err != nil {
			p.f.Close()
			return fmt.Errorf("truncate %s: %w", name, err)
		}
	}
	if err := setBack(p.f, time.Now().Add(-2*Settle)); err != nil {
		p.f.Close()
		return fmt.Errorf("seal %s: %w", name, err)
	}
	if p.n >= writebackFrom {
		startWriteback(p.f)
	}
	if err := p.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	p.group.paths = append(p.group.paths, name)
	return nil
}

// CopyFrom appends the rest of src to the part, in the kernel where it
// can (src an *os.File, or an *io.LimitedReader of one).
func (p *Part) CopyFrom(src io.Reader) (int64, error) {
	n, err := p.fs.Copy(p.f, src)
	p.n += n
	return n, err
}

// writebackFrom is the size from which a closed part's writeback is
// started at once (sync_file_range(2) on Linux, a hint that promises
// nothing), so that the group's sync does not find a batch of big
// messages all still in memory.
const writebackFrom = 256 << 10

// syncEach opens and fsyncs each file (write access: Windows'
// FlushFileBuffers needs it).
func syncEach(paths []string) error {
	for _, p := range paths {
		f, err := openFile(p, os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since it was written: nothing to keep
		}
		if err != nil {
			return fmt.Errorf("fsync %s: %w", p, err)
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("fsync %s: %w", p, err)
		}
	}
	return nil
}
