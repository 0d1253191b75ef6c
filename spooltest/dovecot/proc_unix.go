//go:build unix

package dovecot

import (
	"errors"
	"syscall"
)

// terminate asks the master to stop (SIGTERM: what `doveadm stop` does).
func terminate(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }

// killGroup kills the master's process group (its own, see sysProcAttr).
func killGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }

func isGone(err error) bool { return errors.Is(err, syscall.ESRCH) }
