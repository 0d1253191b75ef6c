package worker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/spool/faultfs"
)

// TestIOErrors injects ENOSPC or EIO (faultfs.Faults) into each kind of
// spool call, at each of its occurrences in turn, while rewrited routes
// four messages; a failed folder fsync makes it stop, as it must, and it
// is restarted. No message may be lost or left behind, and no failed fsync
// retried.
func TestIOErrors(t *testing.T) {
	msgs := []string{msg, strings.Replace(msg, "hi", "two", 1), strings.Replace(msg, "hi", "three", 1), "junk\r\n"}
	injected, lost, retried, exits := 0, 0, 0, 0
	for _, fault := range faultfs.Faults {
		for k := 1; ; k++ {
			w := setup(t, "office")
			w.Backoff = 0
			var ids []string
			for _, m := range msgs {
				id := spool.NewID()
				ids = append(ids, id)
				drop(t, w, id+".eml", m)
			}
			f := faultfs.New(fault, k)
			w.S.SetFS(f)
			err := w.Run(context.Background(), true)
			if f.Hit() == "" {
				break
			}
			injected++
			if err != nil {
				if !spool.IsDirSync(err) {
					t.Errorf("%s #%d: stopped on %v", fault, k, err)
				}
				exits++
			}
			retried += f.Retried()
			if n := restartAndCount(t, w, ids, msgs); n != "" {
				lost++
				t.Errorf("%s #%d (%s): %s", fault, k, f.Hit(), n)
			}
		}
	}
	t.Logf("ioerrors: daemon=rewrited injected=%d lost=%d fsync_retried=%d exits_on_dirsync=%d", injected, lost, retried, exits)
	if injected < 30 || retried > 0 {
		t.Fatalf("injected %d, fsync retried %d", injected, retried)
	}
}

// restartAndCount runs rewrited again on the same spool with the real
// file system, as a restart would, and says what is missing.
func restartAndCount(t *testing.T, w *Worker, ids, msgs []string) string {
	root := w.S.Root
	w.S.Close()
	s, err := spool.Open(root, "rewrited", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w2 := New(s, w.Cfg, zerolog.Nop())
	w2.Backoff = 0
	if err := w2.Recover(context.Background()); err != nil {
		return "recover: " + err.Error()
	}
	if err := w2.Run(context.Background(), true); err != nil {
		return "run: " + err.Error()
	}
	for i, id := range ids {
		if n := copies(root, id, msgs[i]); n != 1 {
			return fmt.Sprintf("message %d has %d copies", i, n)
		}
	}
	for _, d := range []string{"incoming", "tmp/rewrited"} {
		entries, _ := os.ReadDir(filepath.Join(root, d))
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				return d + " not empty: " + e.Name()
			}
		}
	}
	return ""
}
