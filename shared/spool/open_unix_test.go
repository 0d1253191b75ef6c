//go:build unix

package spool

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestOpenFileAsOSOpenFile: the spool's own open keeps what os.OpenFile
// promised its callers: close-on-exec, O_EXCL's os.ErrExist, a blocking
// descriptor (left out of the poller), a *PathError naming the file.
func TestOpenFileAsOSOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.part")
	f, err := OS{}.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fdFlags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
	if err != nil || fdFlags&unix.FD_CLOEXEC == 0 {
		t.Errorf("FD flags %#x, %v: want close-on-exec", fdFlags, err)
	}
	flFlags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil || flFlags&unix.O_NONBLOCK != 0 {
		t.Errorf("file flags %#x, %v: want a blocking descriptor", flFlags, err)
	}
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := (OS{}).Create(path); !errors.Is(err, os.ErrExist) {
		t.Errorf("second Create: %v, want os.ErrExist", err)
	}
	var pe *os.PathError
	if _, err := openDir(filepath.Join(t.TempDir(), "missing")); !errors.As(err, &pe) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("openDir of a missing folder: %v, want a *PathError for os.ErrNotExist", err)
	}
}

// TestSetBack: the times are set on the open file (by descriptor on
// Linux), to the second asked for.
func TestSetBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.part")
	f, err := OS{}.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := setBack(f, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(want) {
		t.Errorf("mtime %v, want %v", fi.ModTime(), want)
	}
}
