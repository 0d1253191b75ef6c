package spool

import "testing"

func TestReleaseAtLeast(t *testing.T) {
	for rel, want := range map[string]bool{"6.1.0-18-amd64": true, "5.8.0": true, "5.7.19": false, "4.19.0": false,
		"5.10+deb11": true, "6.18.44-fc-v1272": true, "garbage": false, "5.x": false} {
		if got := releaseAtLeast(rel, 5, 8); got != want {
			t.Errorf("releaseAtLeast(%q, 5, 8) = %v", rel, got)
		}
	}
}
