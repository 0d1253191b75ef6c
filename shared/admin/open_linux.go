package admin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"example.org/popspool/shared/spool"
)

// head is an open spool file read through its descriptor alone: queue
// opens 100,000 of them, and an os.File costs two more system calls each
// (the poller's registration, a second fstat) than open, fstat, read and
// close. Like spool.OpenFile it follows no symlink, does not block on a
// FIFO and takes only a regular file.
type head struct {
	fd    int
	size  int64
	mtime time.Time
}

func openHead(path string) (*head, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, syscall.ELOOP):
		return nil, fmt.Errorf("open %s: %w (a symbolic link)", path, spool.ErrNotRegular)
	case err != nil:
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		syscall.Close(fd)
		return nil, fmt.Errorf("open %s: %w", path, spool.ErrNotRegular)
	}
	return &head{fd: fd, size: st.Size, mtime: time.Unix(st.Mtim.Unix())}, nil
}

func (h *head) Read(p []byte) (int, error) {
	for {
		n, err := syscall.Read(h.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (h *head) Close() error { return syscall.Close(h.fd) }
