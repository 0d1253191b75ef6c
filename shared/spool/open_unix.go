//go:build unix

package spool

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// openFile is os.OpenFile for the spool's own files and folders, without
// os.OpenFile's attempt to register them with the network poller: for a
// regular file or a folder that attempt costs four fcntl calls and a
// failing epoll_ctl on each open (docs/design-notes.md, "CPU per
// message"). os.NewFile asks for the flags once and leaves a descriptor
// opened without O_NONBLOCK out of the poller. The descriptor is
// close-on-exec, as os.OpenFile makes it.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	for {
		fd, err := unix.Open(path, flag|unix.O_CLOEXEC, uint32(perm.Perm()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// openDir opens a folder for reading its entries or fsyncing it.
func openDir(path string) (*os.File, error) {
	return openFile(path, unix.O_RDONLY|unix.O_DIRECTORY, 0)
}

// setBack sets an open file's access and modification times to t.
func setBack(f *os.File, t time.Time) error {
	if err := futimens(f, t); err != nil {
		return &os.PathError{Op: "chtimes", Path: f.Name(), Err: err}
	}
	return nil
}
