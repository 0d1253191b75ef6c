//go:build !unix

package measure

import "time"

// CPU is 0 where getrusage is not there.
func CPU() time.Duration { return 0 }

// Times is 0, 0 where getrusage is not there.
func Times() (user, sys time.Duration) { return 0, 0 }
