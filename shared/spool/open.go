package spool

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"example.org/popspool/shared/event"
)

// ErrNotRegular marks a spool entry that is not a regular file: a symlink
// (O_NOFOLLOW refuses it), a FIFO, a device, a folder. Such an entry is
// never read; the daemons move it aside as it is.
var ErrNotRegular = errors.New("not a regular file")

// OpenFile opens a spool file for reading without following a symlink or
// blocking on a FIFO, and checks, on the open file, that it is a regular
// file: what was scanned may have been swapped since (issue 16.5).
func OpenFile(path string) (*os.File, error) {
	f, _, err := OpenSized(path)
	return f, err
}

// OpenSized is OpenFile that also returns the file's size, from the same
// fstat as the check.
func OpenSized(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, openFlags, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, 0, fmt.Errorf("open %s: %w (a symbolic link)", path, ErrNotRegular)
	}
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("open %s: %w (%s)", path, ErrNotRegular, fi.Mode().Type())
	}
	return f, fi.Size(), nil
}

// Unreadable reports whether err says a spool file cannot be read as it
// is (not a regular file, or no permission to read it), as opposed to an
// I/O error of the disk that a retry may get past.
func Unreadable(err error) bool {
	return errors.Is(err, ErrNotRegular) || errors.Is(err, os.ErrPermission)
}

// warnOpenFolders logs event 1025 for each spool folder that group or
// others may write to: anyone who can drop files there can inject mail,
// and swap a file for a symlink under the daemon's feet.
func (s *Spool) warnOpenFolders(dirs []string) {
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil {
			continue
		}
		if m := openMode(fi); m != 0 {
			event.Emit(&s.log, event.SpoolWritable).Str("dir", d).Str("mode", fmt.Sprintf("%04o", fi.Mode().Perm())).
				Msg("spool folder writable by group or others; chmod go-w it")
		}
	}
}
