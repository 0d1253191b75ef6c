//go:build windows

package check

import (
	"path/filepath"
	"strings"
)

// writable: Windows folders carry ACLs that only an attempt would test,
// and an attempt in a pickup folder would be taken as a message; the
// first delivery reports a refusal.
func writable(string) error { return nil }

// sameVolume compares the drive or share of a and b (a folder mounted
// into another volume is not seen).
func sameVolume(a, b string) (bool, error) {
	aa, err := filepath.Abs(a)
	if err != nil {
		return false, err
	}
	bb, err := filepath.Abs(b)
	if err != nil {
		return false, err
	}
	return strings.EqualFold(filepath.VolumeName(aa), filepath.VolumeName(bb)), nil
}
