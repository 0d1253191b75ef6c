//go:build linux

package diskfull

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

// canMount says why a tmpfs cannot be mounted here, "" if it can.
func canMount() string {
	if os.Geteuid() != 0 {
		return "needs root to mount a tmpfs for the spool"
	}
	return ""
}

// mountTmpfs mounts a tmpfs of size bytes on dir; it is unmounted when tb
// ends (register it before anything that must stop using dir first).
func mountTmpfs(tb testing.TB, dir string, size int64) {
	tb.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		tb.Fatalf("mount -t tmpfs -o size=%d tmpfs %s: %v", size, dir, err)
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			tb.Errorf("umount %s: %v", dir, err)
		}
	})
}

// free returns the bytes available on the filesystem of dir.
func free(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}
