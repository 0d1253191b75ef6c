//go:build linux

package spool

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// syncfsReports says whether syncfs(2) returns writeback errors: only
// since Linux 5.8, which keeps an error sequence per filesystem and
// checks it against the one the descriptor saw when it was opened.
// Before, syncfs returned 0 whatever happened, so each file is fsynced.
var syncfsReports = kernelAtLeast(5, 8)

// syncfsFrom is the smallest group synced with one syncfs(2).
const syncfsFrom = 4

// syncGroup makes the named files' data durable with one syncfs(2) on
// anchor, an open folder of the spool taken before the files were
// written: a writeback error on the filesystem since then, theirs
// included, is returned (one of another program's files too: the caller
// then redoes the group, which is safe).
//
// A group of fewer than syncfsFrom files is fsynced file by file: syncfs
// also writes back every other program's dirty data on the filesystem,
// which a single message (an idle pipeline) should not wait for.
func syncGroup(anchor *os.File, paths []string) error {
	if !syncfsReports || len(paths) < syncfsFrom {
		return syncEach(paths)
	}
	if err := unix.Syncfs(int(anchor.Fd())); err != nil {
		return fmt.Errorf("syncfs %s (%d files): %w", anchor.Name(), len(paths), err)
	}
	return nil
}

func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	return releaseAtLeast(unix.ByteSliceToString(u.Release[:]), major, minor)
}

// releaseAtLeast compares a kernel release such as "6.1.0-18-amd64".
func releaseAtLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	minorDigits := parts[1]
	if i := strings.IndexFunc(minorDigits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minorDigits = minorDigits[:i]
	}
	mi, err2 := strconv.Atoi(minorDigits)
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// startWriteback asks the kernel to start writing f's dirty pages back
// now, without waiting: a hint, which durability does not depend on.
func startWriteback(f *os.File) {
	unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}
