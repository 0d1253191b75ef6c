// Package powercut is the power-cut model of the spool: a Recorder logs
// every call by which the spool changes the disk, and States builds every
// state a weak file system may leave after a power cut at each point of
// that log. A test then materialises each state in a folder, runs the
// daemon's recovery on it, and checks that no message was lost.
//
// The model (after ALICE's abstract persistence model and RocksDB's
// fault-injection file system): file data not fsynced is lost, or part of
// it (a prefix of the appends since the last fsync) survives; a change to
// a folder entry (create, rename, unlink) is durable once either folder it
// touches has been fsynced after it, and before that it may or may not
// have reached the disk, independently of the others; a rename is atomic
// (both its names change or neither).
package powercut

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"example.org/popspool/shared/spool"
)

// Op is one recorded call.
type Op struct {
	Kind  string // "create", "reuse", "truncate", "write", "sync", "rename", "remove", "syncdir", "mark"
	Path  string // relative to the root, slash-separated
	To    string // rename target
	Inode int    // create, write, sync: the file
	Data  []byte // sync: the file's content at fsync; write: the bytes appended
}

// Recorder is a spool.FS that performs each call on the real disk and
// records it.
type Recorder struct {
	spool.OS
	Root    string
	Initial map[string][]byte // files at the start, all durable
	Dirs    []string          // folders at the start
	start   map[string]int    // their inodes

	mu    sync.Mutex
	Ops   []Op
	inode map[string]int // current name -> inode
	next  int
}

// NewRecorder snapshots the tree under root (minus lock files) as the
// durable starting state.
func NewRecorder(root string) (*Recorder, error) {
	r := &Recorder{Root: root, Initial: map[string][]byte{}, inode: map[string]int{}, start: map[string]int{}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := r.rel(p)
		if d.IsDir() {
			r.Dirs = append(r.Dirs, rel)
			return nil
		}
		if d.Name() == ".lock" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		r.Initial[rel] = b
		r.next++
		r.inode[rel] = -r.next // initial files have negative inodes
		r.start[rel] = -r.next
		return nil
	})
	return r, err
}

func (r *Recorder) rel(p string) string {
	rel, err := filepath.Rel(r.Root, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return p
	}
	return filepath.ToSlash(rel)
}

func (r *Recorder) add(op Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch op.Kind {
	case "create":
		r.next++
		op.Inode = r.next
		r.inode[op.Path] = op.Inode
	case "sync", "write", "reuse", "truncate":
		op.Inode = r.inode[op.Path]
	case "rename":
		r.inode[op.To] = r.inode[op.Path]
		delete(r.inode, op.Path)
	case "remove":
		delete(r.inode, op.Path)
	}
	r.Ops = append(r.Ops, op)
}

// Mark records something outside the disk that cannot be undone (a POP3
// server deleting a message), so a checker knows which crash states come
// after it.
func (r *Recorder) Mark(note string) { r.add(Op{Kind: "mark", Path: note}) }

// Marks returns the marks among the first k calls.
func (r *Recorder) Marks(k int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, op := range r.Ops[:k] {
		if op.Kind == "mark" {
			out = append(out, op.Path)
		}
	}
	return out
}

// Create records a new file.
func (r *Recorder) Create(path string) (*os.File, error) {
	f, err := r.OS.Create(path)
	if err == nil {
		r.add(Op{Kind: "create", Path: r.rel(path)})
	}
	return f, err
}

// Reuse records a file opened to be written over from its start: until
// its next fsync what is written may reach the disk in part (a prefix of
// it over the old content), whole or not at all.
func (r *Recorder) Reuse(path string) (*os.File, error) {
	f, err := r.OS.Reuse(path)
	if err == nil {
		r.add(Op{Kind: "reuse", Path: r.rel(path)})
	}
	return f, err
}

// Truncate records a file cut to a size; the model credits it with
// nothing until the file's next fsync, which records the content.
func (r *Recorder) Truncate(f *os.File, size int64) error {
	err := r.OS.Truncate(f, size)
	if err == nil {
		r.add(Op{Kind: "truncate", Path: r.rel(f.Name())})
	}
	return err
}

// Write records bytes appended to a file; until its next fsync they may
// reach the disk in part, whole or not at all.
func (r *Recorder) Write(f *os.File, b []byte) (int, error) {
	n, err := r.OS.Write(f, b)
	if n > 0 {
		r.add(Op{Kind: "write", Path: r.rel(f.Name()), Data: append([]byte(nil), b[:n]...)})
	}
	return n, err
}

// SyncFile records the file's content as durable.
func (r *Recorder) SyncFile(f *os.File) error {
	if err := r.OS.SyncFile(f); err != nil {
		return err
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return err
	}
	r.add(Op{Kind: "sync", Path: r.rel(f.Name()), Data: b})
	return nil
}

// SyncGroup records each file's content as durable, as one fsync of
// each would; the model credits it with nothing more (not the folder
// entries that syncfs(2) may write too).
func (r *Recorder) SyncGroup(anchor *os.File, paths []string) error {
	if err := r.OS.SyncGroup(anchor, paths); err != nil {
		return err
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since it was written: nothing to keep
		}
		if err != nil {
			return err
		}
		r.add(Op{Kind: "sync", Path: r.rel(p), Data: b})
	}
	return nil
}

// Copy records the bytes copied into dst as appended to it.
func (r *Recorder) Copy(dst *os.File, src io.Reader) (int64, error) {
	at, err := dst.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	n, err := r.OS.Copy(dst, src)
	if n > 0 {
		b, rerr := os.ReadFile(dst.Name()) // dst is write-only
		if rerr != nil || int64(len(b)) < at+n {
			return n, errors.Join(err, rerr, io.ErrShortWrite)
		}
		r.add(Op{Kind: "write", Path: r.rel(dst.Name()), Data: b[at : at+n]})
	}
	return n, err
}

// Rename records a rename that replaces.
func (r *Recorder) Rename(oldpath, newpath string) error {
	err := r.OS.Rename(oldpath, newpath)
	if err == nil {
		r.add(Op{Kind: "rename", Path: r.rel(oldpath), To: r.rel(newpath)})
	}
	return err
}

// RenameNoReplace records a rename that does not replace.
func (r *Recorder) RenameNoReplace(oldpath, newpath string) error {
	err := r.OS.RenameNoReplace(oldpath, newpath)
	if err == nil {
		r.add(Op{Kind: "rename", Path: r.rel(oldpath), To: r.rel(newpath)})
	}
	return err
}

// Remove records an unlink.
func (r *Recorder) Remove(path string) error {
	err := r.OS.Remove(path)
	if err == nil {
		r.add(Op{Kind: "remove", Path: r.rel(path)})
	}
	return err
}

// SyncDir records a folder fsync.
func (r *Recorder) SyncDir(dir string) error {
	err := r.OS.SyncDir(dir)
	if err == nil {
		r.add(Op{Kind: "syncdir", Path: r.rel(dir)})
	}
	return err
}
