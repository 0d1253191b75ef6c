//go:build !linux

package admin

import (
	"os"
	"time"

	"example.org/popspool/shared/spool"
)

// head is an open spool file (open_linux.go has the fast one).
type head struct {
	*os.File
	size  int64
	mtime time.Time
}

func openHead(path string) (*head, error) {
	f, err := spool.OpenFile(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &head{File: f, size: fi.Size(), mtime: fi.ModTime()}, nil
}
