//go:build !linux

package spool

import "os"

// syncGroup fsyncs each file (FlushFileBuffers on Windows): only Linux
// has a syncfs(2) that reports writeback errors.
func syncGroup(_ *os.File, paths []string) error { return syncEach(paths) }

// startWriteback is Linux's sync_file_range hint; nothing here.
func startWriteback(*os.File) {}
