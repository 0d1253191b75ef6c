package spool

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// A Section reads exactly its range, and OS.Copy copies exactly that
// range into another file (copy_file_range on Linux).
func TestSectionReadAndCopy(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("X-Receiver: <a@b>\r\nSubject: s\r\n\r\nbody\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const off, size = 19, 17
	s, err := OpenSection(src, off, size)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(s)
	s.Close()
	if err != nil || string(b) != "Subject: s\r\n\r\nbod" {
		t.Fatalf("read %q, %v", b, err)
	}
	s, err = OpenSection(src, off, size)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dst, err := OS{}.Create(filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	dst.WriteString("head\r\n")
	n, err := OS{}.Copy(dst, s)
	dst.Close()
	got, _ := os.ReadFile(filepath.Join(dir, "dst"))
	if err != nil || n != size || string(got) != "head\r\nSubject: s\r\n\r\nbod" {
		t.Fatalf("copied %d bytes, %q, %v", n, got, err)
	}
}

// Sections of a file the caller holds read their range one after the
// other, whatever the last one left the offset at, and their Close leaves
// the file open for the next.
func TestSectionOfSharesTheFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, []byte("X-Receiver: <a@b>\r\nSubject: s\r\n\r\nbody\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const off, size = 19, 17
	for i := range 2 {
		s, err := SectionOf(f, off, size)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(s)
		if err != nil || string(b) != "Subject: s\r\n\r\nbod" {
			t.Fatalf("read %d: %q, %v", i, b, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := SectionOf(f, off, size)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := OS{}.Create(filepath.Join(dir, "dst"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := OS{}.Copy(dst, s)
	dst.Close()
	got, _ := os.ReadFile(filepath.Join(dir, "dst"))
	if err != nil || n != size || string(got) != "Subject: s\r\n\r\nbod" {
		t.Fatalf("copied %d bytes, %q, %v", n, got, err)
	}
	if _, err := f.Stat(); err != nil {
		t.Fatalf("the held file was closed: %v", err)
	}
}
