//go:build windows

package spool

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows"
)

// syncDir is a no-op: Windows cannot fsync a folder ("Access is denied").
// NTFS journals its metadata and renames use MOVEFILE_WRITE_THROUGH.
func syncDir(string) error { return nil }

// renameNoReplace moves src to dst with write-through and without
// replacing, retrying for up to two seconds while antivirus scanners or
// indexers hold the file open.
func renameNoReplace(src, dst string) error {
	from, err := windows.UTF16PtrFromString(src)
	if err != nil {
		return err
	}
	to, err := windows.UTF16PtrFromString(dst)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		err = windows.MoveFileEx(from, to, windows.MOVEFILE_WRITE_THROUGH)
		if err == nil {
			return nil
		}
		if errors.Is(err, windows.ERROR_ALREADY_EXISTS) || errors.Is(err, windows.ERROR_FILE_EXISTS) {
			return &os.LinkError{Op: "rename", Old: src, New: dst, Err: os.ErrExist}
		}
		transient := errors.Is(err, windows.ERROR_SHARING_VIOLATION) || errors.Is(err, windows.ERROR_ACCESS_DENIED)
		if !transient || time.Now().After(deadline) {
			return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	ol := new(windows.Overlapped)
	flags := uint32(windows.LOCKFILE_EXCLUSIVE_LOCK | windows.LOCKFILE_FAIL_IMMEDIATELY)
	if err := windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, 1, 0, ol); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// device returns the volume of path; folders on one volume share it.
func device(path string) (uint64, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, err
	}
	vol := filepath.VolumeName(abs)
	var h uint64
	for _, c := range vol {
		h = h*31 + uint64(c|0x20)
	}
	return h, nil
}

// IsNoSpace reports whether err means the disk or the quota is full.
func IsNoSpace(err error) bool {
	return errors.Is(err, windows.ERROR_DISK_FULL) || errors.Is(err, windows.ERROR_HANDLE_DISK_FULL)
}

// openFlags: Windows opens no FIFOs here, and a symlink needs privileges
// to make; the regular-file check after opening still applies.
const openFlags = os.O_RDONLY

// openMode: Windows folders carry ACLs, not mode bits; nothing to warn of.
func openMode(os.FileInfo) os.FileMode { return 0 }
