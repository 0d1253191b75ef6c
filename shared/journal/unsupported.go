package journal

import (
	"errors"
	"os"
	"runtime"
)

// isUnsupported: Windows cannot fsync a folder; NTFS journals metadata.
func isUnsupported(err error) bool {
	return runtime.GOOS == "windows" && errors.Is(err, os.ErrPermission)
}
