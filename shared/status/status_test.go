package status

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/spool"
)

func TestTrackerReadsLogLines(t *testing.T) {
	tr := NewTracker("fetchd", "1.0")
	lines := []string{
		`{"level":"info","event":2001,"account":"office","ok":true,"fetched":2,"time":"2026-11-23T10:00:00Z","message":"polled"}`,
		`{"level":"info","event":2001,"account":"office","ok":true,"fetched":1,"time":"2026-11-23T10:05:00Z","message":"polled"}`,
		`{"level":"error","event":2003,"account":"shop","error":"dial tcp: refused","time":"2026-11-23T10:06:00Z","message":"cannot connect"}`,
		`{"level":"info","event":2001,"account":"shop","ok":false,"fetched":0,"time":"2026-11-23T10:06:01Z","message":"polled"}`,
		`{"level":"info","event":2002,"size":"not a number","time":"2026-11-23T10:06:02Z","message":"odd field"}`,
		`{"level":"debug","message":"no event"}`,
		`not json at all`,
	}
	var lvl zerolog.Level
	for _, l := range lines {
		lvl = tr.Observe([]byte(l + "\n"))
	}
	if lvl != zerolog.NoLevel {
		t.Errorf("level of a non-JSON line: %v", lvl)
	}
	f := tr.Snapshot()
	if a := f.Accounts["office"]; a.Fetched != 1 || a.Total != 3 || a.LastError != nil || !a.LastOK.Equal(a.LastPoll) {
		t.Errorf("office %+v", a)
	}
	if a := f.Accounts["shop"]; a.LastError == nil || a.LastError.Event != 2003 || a.LastError.Error != "dial tcp: refused" || !a.LastOK.IsZero() {
		t.Errorf("shop %+v", a)
	}
	if f.LastError == nil || f.LastError.Name != "cannot connect to POP3 server" {
		t.Errorf("last error %+v", f.LastError)
	}
	if f.Events[2001].N != 3 || f.Events[2002].N != 1 || len(f.Events) != 3 {
		t.Errorf("counts %v", f.Events)
	}
	if want := time.Date(2026, 11, 23, 10, 6, 2, 0, time.UTC); !f.LastActivity.Equal(want) {
		t.Errorf("last activity %v", f.LastActivity)
	}
}

func TestSaveIsAtomicAndLoadable(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, spool.Status), 0o700)
	f := NewTracker("deliverd", "1.0").Snapshot()
	for i := 0; i < 3; i++ {
		if err := Save(root, &f); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(root, spool.Status))
	if len(entries) != 1 || entries[0].Name() != "deliverd.json" {
		t.Fatalf("status/ holds %v", entries)
	}
	g, err := Load(root, "deliverd")
	if err != nil || g.PID != os.Getpid() || g.Version != "1.0" {
		t.Fatalf("%+v %v", g, err)
	}
	if _, err := Load(root, "fetchd"); !os.IsNotExist(err) {
		t.Fatalf("missing file: %v", err)
	}
}

// spoolWith makes a spool at a fixed time: fetchd running with one good
// and one failing account, rewrited gone without a word, deliverd never
// started; a file stuck in pickup/ and one in failed/.
func spoolWith(t *testing.T, now time.Time) string {
	root := t.TempDir()
	for _, d := range spool.Folders {
		os.Mkdir(filepath.Join(root, d), 0o700)
	}
	put := func(folder string, age time.Duration) {
		p := filepath.Join(root, folder, spool.NewID()+".eml")
		os.WriteFile(p, []byte("Subject: x\r\n\r\nx\r\n"), 0o600)
		os.Chtimes(p, now.Add(-age), now.Add(-age))
	}
	put(spool.Pickup, 25*time.Minute)
	put(spool.Pickup, time.Minute)
	put(spool.Failed, 50*time.Hour)
	os.WriteFile(filepath.Join(root, spool.Incoming, ".copying"), nil, 0o600)

	fetchd := &File{Daemon: "fetchd", Version: "1.0", PID: 812, State: "running", Started: now.Add(-74 * time.Hour),
		Updated: now.Add(-10 * time.Second), LastActivity: now.Add(-2 * time.Minute),
		LastError: &Problem{Event: 2005, Name: "POP3 login refused", Account: "shop", Error: "-ERR [AUTH] invalid password", Time: now.Add(-2 * time.Minute)},
		Accounts: map[string]*Account{
			"office": {LastPoll: now.Add(-2 * time.Minute), LastOK: now.Add(-2 * time.Minute), Fetched: 3, Total: 41},
			"shop": {LastPoll: now.Add(-2 * time.Minute), LastOK: now.Add(-3 * time.Hour),
				LastError: &Problem{Event: 2005, Name: "POP3 login refused", Account: "shop", Error: "-ERR [AUTH] invalid password", Time: now.Add(-2 * time.Minute)}},
		}}
	rewrited := &File{Daemon: "rewrited", Version: "1.0", PID: 813, State: "running", Started: now.Add(-74 * time.Hour),
		Updated: now.Add(-3 * time.Hour), LastActivity: now.Add(-3 * time.Hour)}
	for _, f := range []*File{fetchd, rewrited} {
		if err := Save(root, f); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestReportAtAGlance(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	root := spoolWith(t, now)
	var out bytes.Buffer
	n := Report(&out, Input{Root: root, Accounts: []string{"office", "shop", "new"}, Now: now})
	got := out.String()
	t.Logf("\n%s", got)
	for _, want := range []string{
		"fetchd    running    3d2h  812  2m ago         2005, 2m ago  1.0",
		"rewrited  STALE      -     813  3h0m ago       -             1.0",
		"deliverd  NO STATUS",
		"incoming/    0      -",
		"pickup/      2      25m",
		"failed/      1      2d2h",
		"office   2m ago     ok, 3 fetched (41 since start)",
		"shop     2m ago     FAILED: 2005 POP3 login refused",
		"new      -          not polled since fetchd started",
		"- rewrited is not running: its status was last updated 3h0m ago",
		"- deliverd: no status file",
		"- pickup/: 2 file(s), the oldest waiting 25m: deliverd is not taking them",
		"- failed/: 1 file(s)",
		"- account shop: 2005 POP3 login refused (2m ago): -ERR [AUTH] invalid password",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(got, "- fetchd: 2005") {
		t.Error("an account's error is listed twice")
	}
	if n != 5 {
		t.Errorf("%d items need attention, want 5", n)
	}
}

func TestReportAllWell(t *testing.T) {
	now := time.Now()
	root := t.TempDir()
	for _, d := range spool.Folders {
		os.Mkdir(filepath.Join(root, d), 0o700)
	}
	for _, d := range spool.Daemons {
		Save(root, &File{Daemon: d, State: "running", Started: now.Add(-time.Hour), Updated: now})
	}
	var out bytes.Buffer
	if n := Report(&out, Input{Root: root, Now: now}); n != 0 || !strings.Contains(out.String(), "Nothing needs attention.") {
		t.Fatalf("%d\n%s", n, out.String())
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 42 * time.Second: "42s", 5 * time.Minute: "5m",
		123 * time.Minute: "2h3m", 76 * time.Hour: "3d4h",
	} {
		if got := Age(d); got != want {
			t.Errorf("Age(%v) = %q, want %q", d, got, want)
		}
	}
}
