//go:build !unix

package worker

import "time"

// cpuTime is not measured here: the benchmarks report 0 CPU.
func cpuTime() time.Duration { return 0 }

// syncDisk is sync(2) where there is one.
func syncDisk() {}
