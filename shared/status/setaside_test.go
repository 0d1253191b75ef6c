package status

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.org/popspool/shared/spool"
)

// TestSetAsideShown: the set_aside field of fetchd's "mailbox polled"
// line (2001) is kept per account and shown, with what to do, until a
// poll lists none.
func TestSetAsideShown(t *testing.T) {
	tr := NewTracker("fetchd", "1.0")
	tr.Observe([]byte(`{"level":"info","event":2001,"account":"office","ok":true,"fetched":4,"set_aside":1,"time":"2026-11-23T10:00:00Z","message":"polled"}` + "\n"))
	tr.Observe([]byte(`{"level":"info","event":2001,"account":"office","ok":false,"fetched":0,"time":"2026-11-23T10:01:00Z","message":"polled"}` + "\n"))
	report := func() string {
		f := tr.Snapshot()
		f.State, f.Updated = "running", time.Now()
		root := t.TempDir()
		os.Mkdir(filepath.Join(root, spool.Status), 0o700)
		if err := Save(root, &f); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		Report(&out, Input{Root: root, Accounts: []string{"office"}})
		return out.String()
	}
	got := report()
	for _, want := range []string{"; 1 message on the server cannot be downloaded", "touch control/retrieve-now.office"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q:\n%s", want, got)
		}
	}
	tr.Observe([]byte(`{"level":"info","event":2001,"account":"office","ok":true,"fetched":1,"set_aside":0,"time":"2026-11-23T10:02:00Z","message":"polled"}` + "\n"))
	if got := report(); strings.Contains(got, "cannot be downloaded") {
		t.Errorf("still shown after a poll with none:\n%s", got)
	}
}
