//go:build !linux

package service

import (
	"io"
	"os"
)

// journald is Linux's; elsewhere the log goes to stderr.
func journald(*os.File) io.Writer { return nil }
