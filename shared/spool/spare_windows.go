package spool

import "os"

// spareable is false on Windows: a file is reused there only where the
// spool can tell it is its own, which it does not try to.
func spareable(os.FileInfo) bool { return false }
