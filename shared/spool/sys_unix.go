//go:build unix

package spool

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// syncDir makes a folder's entries durable: without it a renamed file can
// vanish or reappear after a power cut (fsync(2); notes/reliability.md §5).
func syncDir(dir string) error {
	d, err := openDir(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &DirSyncError{Dir: dir, Err: err}
	}
	return nil
}

// renameNoReplace renames src to dst and fails with os.ErrExist when dst
// exists, so a file is never silently overwritten.
func renameNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
		// Filesystems without RENAME_NOREPLACE: link and unlink, which
		// also refuses an existing target.
		if err = os.Link(src, dst); err == nil {
			return os.Remove(src)
		}
		return err
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	return nil
}

func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock held by another process: %w", err)
	}
	return f, nil
}

func device(path string) (uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, nil
	}
	return uint64(st.Dev), nil
}

// IsNoSpace reports whether err means the disk or the quota is full.
func IsNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// openFlags keep a spool open from following a symlink an operator or an
// attacker swapped in after the scan, and from blocking on a FIFO.
const openFlags = os.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// openMode reports a folder's mode bits that let group or others write.
func openMode(fi os.FileInfo) os.FileMode { return fi.Mode().Perm() & 0o022 }
