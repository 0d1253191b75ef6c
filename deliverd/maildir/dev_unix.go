//go:build unix

package maildir

import (
	"os"
	"syscall"
)

// devOf is the filesystem fi lives on.
func devOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}
