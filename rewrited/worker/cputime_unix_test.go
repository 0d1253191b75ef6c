//go:build unix

package worker

import (
	"syscall"
)

// syncDisk writes every dirty page back (sync(2)), so that a benchmark
// does not pay for its own set-up's writeback.
func syncDisk() { syscall.Sync() }
