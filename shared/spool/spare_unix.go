//go:build unix

package spool

import (
	"os"
	"syscall"
)

// spareable reports whether a file is the spool's alone: a regular file
// with one link, owned by this process's user, mode 0600.
func spareable(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode().IsRegular() && fi.Mode().Perm() == 0o600 &&
		st.Nlink == 1 && int(st.Uid) == os.Geteuid()
}
