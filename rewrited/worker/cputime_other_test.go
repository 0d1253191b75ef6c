//go:build !unix

package worker

// syncDisk is sync(2) where there is one.
func syncDisk() {}
