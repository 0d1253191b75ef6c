//go:build linux

package spool

import (
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// futimens is utimensat(2) on the descriptor itself (a NULL path, as
// glibc's futimens does): no path lookup, unlike os.Chtimes by name.
// x/sys's Futimes goes through /proc/self/fd, a longer lookup still.
func futimens(f *os.File, t time.Time) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno unix.Errno
	if err := sc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall6(unix.SYS_UTIMENSAT, fd, 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}
