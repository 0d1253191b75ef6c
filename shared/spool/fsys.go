package spool

import (
	"io"
	"os"
)

// FS is every call by which the spool changes the disk. Spool uses the
// real one, OS; tests put a recorder in its place to build every state a
// power cut could leave (the power-cut model) or to inject I/O errors.
type FS interface {
	// Create makes a new file for writing; it must not exist (O_EXCL, 0600).
	Create(path string) (*os.File, error)
	// Reuse opens an existing file for writing over it from its start,
	// without truncating it (a spare inode, Spool.Retire).
	Reuse(path string) (*os.File, error)
	// Truncate cuts an open file to size.
	Truncate(f *os.File, size int64) error
	// Write writes to a file made by Create or Reuse (or a journal opened
	// for appending); like io.Writer, a short count comes with an error.
	Write(f *os.File, b []byte) (int, error)
	// SyncFile makes a file's data durable (fsync).
	SyncFile(f *os.File) error
	// SyncGroup makes the data of the named files durable together:
	// syncfs(2) on Linux, on the open anchor, which was opened on the
	// same filesystem before any of them was written (its writeback-error
	// sample covers them); elsewhere each file is fsynced. Folder entries
	// are not promised: the caller fsyncs the folders.
	SyncGroup(anchor *os.File, paths []string) error
	// Copy appends the rest of src to dst: in the kernel where it can
	// (copy_file_range(2) on Linux, for an *os.File or an
	// *io.LimitedReader of one).
	Copy(dst *os.File, src io.Reader) (int64, error)
	// Rename renames, replacing an existing target.
	Rename(oldpath, newpath string) error
	// RenameNoReplace renames, failing with os.ErrExist if newpath exists.
	RenameNoReplace(oldpath, newpath string) error
	// Remove unlinks a file.
	Remove(path string) error
	// SyncDir makes a folder's entries durable.
	SyncDir(dir string) error
}

// OS is the real file system.
type OS struct{}

// Create opens path with O_CREATE|O_EXCL|O_WRONLY and mode 0600.
func (OS) Create(path string) (*os.File, error) {
	return openFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
}

// Reuse opens path with O_WRONLY: no O_TRUNC, which on ext4 makes the
// close start the writeback of what is written next (auto_da_alloc) and
// cost three to four times a new file (docs/benchmarks.md).
func (OS) Reuse(path string) (*os.File, error) { return openFile(path, os.O_WRONLY, 0) }

// Truncate is f.Truncate.
func (OS) Truncate(f *os.File, size int64) error { return f.Truncate(size) }

// Write is f.Write.
func (OS) Write(f *os.File, b []byte) (int, error) { return f.Write(b) }

// SyncFile calls fsync (FlushFileBuffers on Windows).
func (OS) SyncFile(f *os.File) error { return f.Sync() }

// SyncGroup is one syncfs(2) on Linux, an fsync of each file elsewhere.
func (OS) SyncGroup(anchor *os.File, paths []string) error { return syncGroup(anchor, paths) }

// Copy is dst.ReadFrom(src), which is copy_file_range(2) on Linux for an
// *os.File, an *io.LimitedReader of one, or a *Section.
func (OS) Copy(dst *os.File, src io.Reader) (int64, error) {
	if s, ok := src.(*Section); ok {
		src = &s.LimitedReader
	}
	return dst.ReadFrom(src)
}

// Rename is os.Rename.
func (OS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// RenameNoReplace never overwrites newpath.
func (OS) RenameNoReplace(oldpath, newpath string) error { return renameNoReplace(oldpath, newpath) }

// Remove is os.Remove.
func (OS) Remove(path string) error { return os.Remove(path) }

// SyncDir fsyncs a folder (a no-op on Windows, which cannot).
func (OS) SyncDir(dir string) error { return syncDir(dir) }

// SetFS replaces the file system the spool writes through; for tests.
func (s *Spool) SetFS(fs FS) { s.fs = fs }

// FS returns the file system the spool writes through, for the journals
// that live beside it in state/.
func (s *Spool) FS() FS { return s.fs }

// SyncTmp fsyncs the daemon's tmp/ folder, so the files created there
// are durable by name (fetchd does it before the journal records them).
// It also makes the spares retired before it ready for reuse.
func (s *Spool) SyncTmp() error {
	gen := s.spares.syncing()
	if err := s.fs.SyncDir(s.TmpDir()); err != nil {
		return err
	}
	s.spares.done(gen)
	return nil
}
