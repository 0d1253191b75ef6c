//go:build !unix

package dovecot

import (
	"errors"
	"syscall"
)

// Dovecot runs on Unix only; Available says so before any of these is used.

func sysProcAttr() *syscall.SysProcAttr { return nil }

func terminate(int) error { return errors.New("not supported on this system") }

func killGroup(int) error { return errors.New("not supported on this system") }

func isGone(error) bool { return false }
