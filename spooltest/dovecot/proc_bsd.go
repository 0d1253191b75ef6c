//go:build unix && !linux

package dovecot

import "syscall"

// sysProcAttr puts the master in its own process group.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
