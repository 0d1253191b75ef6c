//go:build unix

package worker

import (
	"syscall"
	"time"
)

// cpuTime is the process's user plus system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// syncDisk writes every dirty page back (sync(2)), so that a benchmark
// does not pay for its own set-up's writeback.
func syncDisk() { syscall.Sync() }
