//go:build !unix

package notify

// monotonicUsec is unused without systemd.
func monotonicUsec() int64 { return 0 }
