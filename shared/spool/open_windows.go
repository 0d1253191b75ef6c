//go:build windows

package spool

import (
	"os"
	"time"
)

// openFile is os.OpenFile on Windows.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag, perm)
}

// openDir opens a folder for reading its entries.
func openDir(path string) (*os.File, error) { return os.Open(path) }

// setBack sets a file's access and modification times to t, by name.
func setBack(f *os.File, t time.Time) error { return os.Chtimes(f.Name(), t, t) }
