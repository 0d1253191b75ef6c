package spool

import (
	"fmt"
	"io"
	"os"
)

// Section is an open part of a spool file (a message after its envelope
// lines): a reader of it and the file to close. The spool's Copy hands
// it to copy_file_range(2) on Linux, so a message copied into another
// file never passes through user space.
type Section struct {
	io.LimitedReader
	f *os.File
}

// OpenSection opens size bytes of path from offset on, through OpenFile.
func OpenSection(path string, offset, size int64) (*Section, error) {
	f, err := OpenFile(path)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("seek %s: %w", path, err)
	}
	return &Section{LimitedReader: io.LimitedReader{R: f, N: size}, f: f}, nil
}

// Close closes the file.
func (s *Section) Close() error { return s.f.Close() }
