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
	f *os.File // closed by Close; nil for a section of a file its caller holds (SectionOf)
}

// OpenSection opens size bytes of path from offset on, through OpenFile.
func OpenSection(path string, offset, size int64) (*Section, error) {
	f, err := OpenFile(path)
	if err != nil {
		return nil, err
	}
	s, err := SectionOf(f, offset, size)
	if err != nil {
		f.Close()
		return nil, err
	}
	s.f = f
	return s, nil
}

// SectionOf is a section of size bytes from offset on of a file the
// caller holds open and closes itself: it moves f's offset there, and its
// Close leaves f open. Sections of one file read it one after the other,
// never at once (each moves the offset they share).
func SectionOf(f *os.File, offset, size int64) (*Section, error) {
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seek %s: %w", f.Name(), err)
	}
	return &Section{LimitedReader: io.LimitedReader{R: f, N: size}}, nil
}

// Close closes the file opened by OpenSection; for a SectionOf it does
// nothing.
func (s *Section) Close() error {
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}
