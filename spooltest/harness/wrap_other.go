//go:build !linux

package harness

import (
	"errors"
	"os"
)

// wrapped is the process a wrapper started; only Linux can tell.
func wrapped(*os.Process) (*os.Process, error) {
	return nil, errors.New("a wrapped daemon is found through Linux's /proc")
}
