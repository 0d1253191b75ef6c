//go:build unix

package check

import (
	"fmt"
	"os"
	"syscall"
)

// writable reports whether the effective user may create files in dir.
func writable(dir string) error {
	if err := syscall.Access(dir, 0x2); err != nil { // W_OK
		return fmt.Errorf("%s is not writable: %w", dir, err)
	}
	return nil
}

// sameVolume reports whether a and b are on one file system.
func sameVolume(a, b string) (bool, error) {
	var sa, sb syscall.Stat_t
	if err := syscall.Stat(a, &sa); err != nil {
		return false, &os.PathError{Op: "stat", Path: a, Err: err}
	}
	if err := syscall.Stat(b, &sb); err != nil {
		return false, &os.PathError{Op: "stat", Path: b, Err: err}
	}
	return sa.Dev == sb.Dev, nil
}
