//go:build unix

package measure

import (
	"syscall"
	"time"
)

// CPU is this process's user+system CPU time so far.
func CPU() time.Duration {
	user, sys := Times()
	return user + sys
}

// Times is this process's user and system CPU time so far.
func Times() (user, sys time.Duration) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}
