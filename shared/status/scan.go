package status

import (
	"os"
	"path/filepath"
	"strings"

	"example.org/popspool/shared/spool"
)

// Queues are the folders where messages wait, in pipeline order.
var Queues = []string{spool.Incoming, spool.Pickup, spool.Deferred, spool.Failed, spool.Badmail, spool.Duplicates}

// Scan counts the files of each queue folder of the spool at root, and
// finds the oldest. Names starting with "." are skipped, as the daemons
// skip them. A folder that cannot be read is left out of the result.
// It costs one directory read and one stat per file.
func Scan(root string) map[string]Folder {
	out := make(map[string]Folder, len(Queues))
	for _, q := range Queues {
		entries, err := os.ReadDir(filepath.Join(root, q))
		if err != nil {
			continue
		}
		var f Folder
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue // vanished while we looked
			}
			f.Files++
			f.Bytes += info.Size()
			if m := info.ModTime().UTC(); f.Oldest.IsZero() || m.Before(f.Oldest) {
				f.Oldest = m
			}
		}
		out[q] = f
	}
	return out
}
