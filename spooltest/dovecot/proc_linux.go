package dovecot

import "syscall"

// sysProcAttr puts the master in its own process group (so a terminal's
// ^C reaches only the test, which stops it) and has the kernel send it
// SIGTERM if the test process dies first (a go test time-out), so no
// Dovecot outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
