//go:build !unix

package maildir

import "os"

// devOf puts every Maildir in one group: without syncfs(2) a group's
// files are fsynced one by one, whatever their filesystem.
func devOf(os.FileInfo) uint64 { return 0 }
