package crashpoints

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.org/popspool/spooltest/harness"
)

const poisonFrom = "poison@isp.example"

// TestPoisonMessage: one message kills rewrited (or deliverd) with SIGKILL
// every time it is handled, as a parser bug or an OOM kill would. It must
// end set aside after suspect.Limit deaths with it alone in hand, with the
// reason, while the 100 good messages around it are delivered exactly once
// and nothing good is quarantined (issue 11.2 and 11.3).
func TestPoisonMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("poison runs skipped in -short mode")
	}
	for _, c := range []struct{ daemon, point, folder, reason string }{
		{"rewrited", "rewrited.route", "failed", "X-Popspool-Failed: 3006 rewrited died 3 times in a row while handling this file alone ("},
		{"deliverd", "deliverd.send", "badmail", "X-Popspool-Last-Error: deliverd died 3 times in a row while handling this file alone ("},
	} {
		t.Run(c.daemon, func(t *testing.T) {
			f, err := harness.New(t.TempDir(), bins, harness.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want, err := harness.Generate(f.Box, 100, 11)
			if err != nil {
				t.Fatal(err)
			}
			poison := "From: <" + poisonFrom + ">\r\nTo: office@isp.example\r\nSubject: poison\r\nMessage-ID: <poison@isp.example>\r\n\r\nkills its daemon\r\n"
			if err := os.WriteFile(filepath.Join(f.Box, "m0050x.eml"), []byte(poison), 0o600); err != nil {
				t.Fatal(err)
			}
			env := []string{fmt.Sprintf("POPSPOOL_POISON=%s:%s", c.point, poisonFrom)}
			for _, d := range harness.Daemons {
				var e []string
				if d == c.daemon {
					e = env
				}
				if err := f.StartEnv(d, e); err != nil {
					t.Fatal(err)
				}
			}
			deaths := 0
			done := harness.WaitFor(90*time.Second, func() bool {
				if f.Exited(c.daemon) && deaths < 10 {
					deaths++
					if err := f.StartEnv(c.daemon, env); err != nil {
						t.Fatal(err)
					}
				}
				got, _ := f.Delivered()
				n := f.SpoolFiles()
				return len(got) >= len(want) && n[c.folder] >= 1 && n["incoming"]+n["pickup"]+n["tmp/rewrited"]+n["tmp/deliverd"] == 0
			})
			same, missing, dup, _, err := f.Check(want)
			if err != nil {
				t.Fatal(err)
			}
			files := f.SpoolFiles()
			t.Logf("%s: deaths=%d delivered=%d missing=%d duplicated=%d spool=%v", c.daemon, deaths, same, missing, dup, files)
			if !done || same != len(want) || missing+dup > 0 {
				b, _ := os.ReadFile(filepath.Join(f.Logs, c.daemon+".log"))
				t.Fatalf("settled=%v identical=%d missing=%d dup=%d spool=%v\n%s", done, same, missing, dup, files, tail(b))
			}
			set, _ := filepath.Glob(filepath.Join(f.Spool, c.folder, "*.eml"))
			if len(set) != 1 {
				t.Fatalf("%s/ holds %d files, want only the poison", c.folder, len(set))
			}
			b, _ := os.ReadFile(set[0])
			if !strings.Contains(string(b), poisonFrom) || !strings.Contains(string(b), c.reason) {
				t.Fatalf("%s/ holds %q", c.folder, tail(b))
			}
			if deaths < 3 || deaths > 6 {
				t.Errorf("%s died %d times; want the first death, then 3 alone at most a few more", c.daemon, deaths)
			}
		})
	}
}
