// Package faultfs is a spool.FS that fails one chosen call with an I/O
// error, for the I/O-error layer of the reliability tests (notes/
// reliability.md §9, layer 4): each daemon's test runs its work once per
// occurrence of each kind of call, failing that occurrence, then restarts
// on the real file system and checks that nothing was lost.
//
// A failed file fsync is modelled at its worst ("fsyncgate"): the data
// written since the file's last good fsync is gone, so the file is cut
// back to that length. A daemon that goes on as if the fsync had worked
// then loses the message for everyone to see, and one that fsyncs the same
// file again is counted (Retried): after a failed fsync the kernel may
// report success for data it has dropped.
package faultfs

import (
	"io"
	"os"
	"sync"
	"syscall"

	"example.org/popspool/shared/spool"
)

// The kinds of call, as Fault.Kind names them.
const (
	Create   = "create"
	Write    = "write"
	SyncFile = "syncfile"
	Rename   = "rename"  // RenameNoReplace: handoffs and claims
	Replace  = "replace" // Rename over an existing file
	Remove   = "remove"
	SyncDir  = "syncdir"
	// SyncGroup is a group's data sync (spool.Group); Copy counts as a
	// Write.
	SyncGroup = "syncgroup"
)

// Fault is one kind of failure.
type Fault struct {
	Kind string
	Err  syscall.Errno
}

func (f Fault) String() string { return f.Kind + "/" + errName(f.Err) }

func errName(e syscall.Errno) string {
	switch e {
	case syscall.ENOSPC:
		return "ENOSPC"
	case syscall.EIO:
		return "EIO"
	}
	return e.Error()
}

// Faults is the usual set: a full disk where it shows (creating, writing,
// fsyncing a file) and a failing device everywhere.
var Faults = []Fault{
	{Create, syscall.ENOSPC}, {Write, syscall.ENOSPC}, {SyncFile, syscall.ENOSPC},
	{Write, syscall.EIO}, {SyncFile, syscall.EIO}, {Rename, syscall.EIO},
	{Replace, syscall.EIO}, {Remove, syscall.EIO}, {SyncDir, syscall.EIO},
	{SyncGroup, syscall.ENOSPC}, {SyncGroup, syscall.EIO},
}

// FS fails the K-th call of Fault's kind; every other call goes to the
// real file system.
type FS struct {
	spool.OS
	Fault Fault
	K     int

	mu      sync.Mutex
	n       int
	hit     string // the path of the failed call, once it failed
	retried int
	failed  map[*os.File]bool
	durable map[*os.File]int64  // length at the last good fsync
	byName  map[string]*os.File // the file made last under each name
}

// New returns an FS that fails the k-th call (from 1) of f's kind.
func New(f Fault, k int) *FS {
	return &FS{Fault: f, K: k, failed: map[*os.File]bool{}, durable: map[*os.File]int64{}, byName: map[string]*os.File{}}
}

// Hit returns the path of the call that failed, or "" if the K-th call
// never came: the run is then over for this kind.
func (fs *FS) Hit() string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.hit
}

// Retried counts fsyncs of a file whose fsync had failed.
func (fs *FS) Retried() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.retried
}

// fail reports whether this call, of kind on path, is the one to fail.
func (fs *FS) fail(kind, path string) bool {
	if kind != fs.Fault.Kind {
		return false
	}
	fs.n++
	if fs.n != fs.K {
		return false
	}
	fs.hit = path
	return true
}

// Create makes the file, or fails with the fault.
func (fs *FS) Create(p string) (*os.File, error) { return fs.openPart(p, fs.OS.Create) }

// Reuse opens a spare to write over, or fails with the fault of Create
// (it is how a part is made); nothing it holds counts as durable.
func (fs *FS) Reuse(p string) (*os.File, error) { return fs.openPart(p, fs.OS.Reuse) }

// openPart opens a part with open, or fails with the fault of Create.
func (fs *FS) openPart(p string, open func(string) (*os.File, error)) (*os.File, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.fail(Create, p) {
		return nil, &os.PathError{Op: "open", Path: p, Err: fs.Fault.Err}
	}
	f, err := open(p)
	if err == nil {
		fs.durable[f] = 0
		fs.byName[p] = f
	}
	return f, err
}

// Write writes b, or half of it before failing, as a disk filling up
// mid-write does.
func (fs *FS) Write(f *os.File, b []byte) (int, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, ok := fs.durable[f]; !ok {
		// Opened outside Create (a journal): what is there is durable.
		if fi, err := f.Stat(); err == nil {
			fs.durable[f] = fi.Size()
		}
	}
	if fs.fail(Write, f.Name()) {
		n, _ := fs.OS.Write(f, b[:len(b)/2])
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: fs.Fault.Err}
	}
	return fs.OS.Write(f, b)
}

// SyncFile fsyncs f; a failed one cuts f back to its last durable length.
func (fs *FS) SyncFile(f *os.File) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.failed[f] {
		fs.retried++
	}
	if fs.fail(SyncFile, f.Name()) {
		fs.failed[f] = true
		if n, ok := fs.durable[f]; ok {
			f.Truncate(n)
		}
		return &os.PathError{Op: "fsync", Path: f.Name(), Err: fs.Fault.Err}
	}
	if err := fs.OS.SyncFile(f); err != nil {
		return err
	}
	if fi, err := f.Stat(); err == nil {
		fs.durable[f] = fi.Size()
	}
	return nil
}

// SyncGroup syncs the files' data together; a failed one cuts each file
// back to its last durable length, as a failed fsync of each would.
func (fs *FS) SyncGroup(anchor *os.File, paths []string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, p := range paths {
		if fs.failed[fs.byName[p]] {
			fs.retried++
		}
	}
	if fs.fail(SyncGroup, anchor.Name()) {
		for _, p := range paths {
			f := fs.byName[p]
			fs.failed[f] = true
			os.Truncate(p, fs.durable[f])
		}
		return &os.PathError{Op: "syncfs", Path: anchor.Name(), Err: fs.Fault.Err}
	}
	if err := fs.OS.SyncGroup(anchor, paths); err != nil {
		return err
	}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			fs.durable[fs.byName[p]] = fi.Size()
		}
	}
	return nil
}

// Copy copies the rest of src into dst, or half of it before failing
// (as Write).
func (fs *FS) Copy(dst *os.File, src io.Reader) (int64, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.fail(Write, dst.Name()) {
		b, err := io.ReadAll(src)
		if err != nil {
			return 0, err
		}
		n, _ := fs.OS.Write(dst, b[:len(b)/2])
		return int64(n), &os.PathError{Op: "write", Path: dst.Name(), Err: fs.Fault.Err}
	}
	return fs.OS.Copy(dst, src)
}

// RenameNoReplace renames without replacing, or fails.
func (fs *FS) RenameNoReplace(a, b string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.fail(Rename, a) {
		return &os.LinkError{Op: "rename", Old: a, New: b, Err: fs.Fault.Err}
	}
	return fs.OS.RenameNoReplace(a, b)
}

// Rename renames over b, or fails.
func (fs *FS) Rename(a, b string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.fail(Replace, a) {
		return &os.LinkError{Op: "rename", Old: a, New: b, Err: fs.Fault.Err}
	}
	return fs.OS.Rename(a, b)
}

// Remove unlinks p, or fails.
func (fs *FS) Remove(p string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.fail(Remove, p) {
		return &os.PathError{Op: "remove", Path: p, Err: fs.Fault.Err}
	}
	return fs.OS.Remove(p)
}

// SyncDir fsyncs the folder d, or fails as spool's DirSyncError.
func (fs *FS) SyncDir(d string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.fail(SyncDir, d) {
		return &spool.DirSyncError{Dir: d, Err: fs.Fault.Err}
	}
	return fs.OS.SyncDir(d)
}
