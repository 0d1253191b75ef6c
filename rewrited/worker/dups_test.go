package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/rewrited/dedup"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/spool"
)

// setupDups is a worker with three accounts: "one" and "two" are two
// mailboxes of alice's, "three" is a list that reaches alice and carol.
func setupDups(t *testing.T, on bool) (*Worker, *bytes.Buffer) {
	t.Helper()
	w := setup(t)
	for name, to := range map[string][]string{"one": {"alice@contoso.local"}, "two": {"alice@contoso.local"},
		"three": {"alice@contoso.local", "carol@contoso.local"}} {
		w.Cfg.Account = append(w.Cfg.Account, config.Account{Name: name, Routing: config.Routing{DeliverTo: to}})
	}
	w.Cfg.Filter.DropDuplicates = on
	w.Cfg.Filter.DuplicateWindow = config.Duration(48 * time.Hour)
	w.Cfg.Filter.DuplicateKeepDays = 7
	var log bytes.Buffer
	w.Log = zerolog.New(&log)
	return w, &log
}

// copyFrom is the message with Message-ID mid as fetched from account.
func copyFrom(account, mid string) string {
	m := "Received: from pop.example.net by popspool for " + account + "\r\nX-Popspool-Account: " + account +
		"\r\nReturn-Path: <bob@example.net>\r\nFrom: Bob <bob@example.net>\r\nSubject: minutes\r\n"
	if mid != "" {
		m += "Message-ID: " + mid + "\r\n"
	}
	return m + "\r\nthe minutes\r\n"
}

// dropIn puts a copy into incoming/ and returns its id; ids sort in the
// order of the calls, so the first dropped is routed first.
func dropIn(t *testing.T, w *Worker, m string) string {
	t.Helper()
	id := spool.NewID()
	drop(t, w, id+".eml", m)
	return id
}

func files(t *testing.T, w *Worker, folder string) map[string]string {
	t.Helper()
	entries, _ := os.ReadDir(w.S.Dir(folder))
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(w.S.Dir(folder), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(e.Name(), ".eml")] = string(b)
	}
	return out
}

type dupLine struct {
	Event     int    `json:"event"`
	ID        string `json:"id"`
	MessageID string `json:"message_id"`
	Rcpt      string `json:"rcpt"`
	FirstID   string `json:"first_id"`
	Path      string `json:"path"`
}

func dupLines(t *testing.T, log *bytes.Buffer) []dupLine {
	t.Helper()
	var out []dupLine
	for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var d dupLine
		if json.Unmarshal([]byte(l), &d) == nil && d.Event == 3025 {
			out = append(out, d)
		}
	}
	return out
}

func run(t *testing.T, w *Worker) {
	t.Helper()
	if err := w.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
}

func TestDuplicatesOffByDefault(t *testing.T) {
	w, _ := setupDups(t, false)
	dropIn(t, w, copyFrom("one", "<m1@example.net>"))
	dropIn(t, w, copyFrom("two", "<m1@example.net>"))
	run(t, w)
	if n := len(files(t, w, spool.Pickup)); n != 2 {
		t.Fatalf("filter off: %d files in pickup/, want 2", n)
	}
}

// Two of alice's mailboxes got the same message: one copy is delivered,
// the other is kept in duplicates/ with its envelope and logged.
func TestDuplicateOfEveryRecipientKept(t *testing.T) {
	w, log := setupDups(t, true)
	first := dropIn(t, w, copyFrom("one", "<m1@example.net>"))
	second := dropIn(t, w, copyFrom("two", "<m1@example.net>"))
	run(t, w)
	if p := files(t, w, spool.Pickup); len(p) != 1 || p[first] == "" {
		t.Fatalf("pickup/ holds %v, want only %s", keys(p), first)
	}
	d := files(t, w, spool.Duplicates)
	if !strings.HasPrefix(d[second], "X-Sender: <bob@example.net>\r\nX-Receiver: <alice@contoso.local>\r\n") ||
		!strings.HasSuffix(d[second], copyFrom("two", "<m1@example.net>")) {
		t.Fatalf("duplicates/ holds %q", d)
	}
	lines := dupLines(t, log)
	want := dupLine{3025, second, "<m1@example.net>", "alice@contoso.local", first, filepath.Join(w.S.Dir(spool.Duplicates), second+".eml")}
	if len(lines) != 1 || lines[0] != want {
		t.Fatalf("3025 lines %+v, want %+v", lines, want)
	}
}

// A list copy reaching alice, who already has the message, and carol, who
// has not, goes on to carol alone.
func TestDuplicateDroppedPerRecipient(t *testing.T) {
	w, log := setupDups(t, true)
	first := dropIn(t, w, copyFrom("one", "<m1@example.net>"))
	list := dropIn(t, w, copyFrom("three", "<m1@example.net>"))
	run(t, w)
	p := files(t, w, spool.Pickup)
	if !strings.Contains(p[first], "X-Receiver: <alice@contoso.local>") {
		t.Fatalf("first copy: %q", p[first])
	}
	if !strings.HasPrefix(p[list], "X-Sender: <bob@example.net>\r\nX-Receiver: <carol@contoso.local>\r\nReceived:") {
		t.Fatalf("list copy: %q", p[list])
	}
	if l := dupLines(t, log); len(l) != 1 || l[0].Rcpt != "alice@contoso.local" || l[0].FirstID != first || l[0].Path != "" {
		t.Fatalf("3025 lines %+v", l)
	}
}

// Without Message-ID, or with another body, nothing is dropped.
func TestNoMessageIDNeverDropped(t *testing.T) {
	w, log := setupDups(t, true)
	dropIn(t, w, copyFrom("one", ""))
	dropIn(t, w, copyFrom("two", ""))
	dropIn(t, w, copyFrom("one", "<m2@example.net>"))
	dropIn(t, w, strings.Replace(copyFrom("two", "<m2@example.net>"), "the minutes", "other minutes", 1))
	run(t, w)
	if n := len(files(t, w, spool.Pickup)); n != 4 || len(dupLines(t, log)) != 0 {
		t.Fatalf("%d files in pickup/, want 4; 3025 lines %+v", n, dupLines(t, log))
	}
}

// The crash case: rewrited recorded the copy's recipients, synced, and
// died before the routed file moved on; the claimed original is still in
// tmp/rewrited/. Recovery routes it to pickup/, not to duplicates/: the
// record names its own id. A second copy after that is dropped.
func TestCrashAfterRecordIsNoDuplicate(t *testing.T) {
	w, log := setupDups(t, true)
	id := spool.NewID()
	m := copyFrom("one", "<m1@example.net>")
	print, ok, err := dedup.Fingerprint(strings.NewReader(m), "bob@example.net")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	set := w.dupSet()
	if _, _, err := set.Filter(print, id, []string{"alice@contoso.local"}); err != nil {
		t.Fatal(err)
	}
	if err := set.Sync(); err != nil {
		t.Fatal(err)
	}
	w.closeDups() // the crash
	os.WriteFile(filepath.Join(w.S.TmpDir(), id+".eml"), []byte(m), 0o600)
	w2 := New(w.S, w.Cfg, w.Log)
	if err := w2.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	second := dropIn(t, w2, copyFrom("two", "<m1@example.net>"))
	run(t, w2)
	if p := files(t, w2, spool.Pickup); len(p) != 1 || p[id] == "" {
		t.Fatalf("pickup/ holds %v, want the recovered %s", keys(p), id)
	}
	if l := dupLines(t, log); len(l) != 1 || l[0].ID != second || l[0].FirstID != id {
		t.Fatalf("3025 lines %+v", l)
	}
}

// A restart (a new worker on the same spool) remembers what was routed.
func TestDuplicateSetSurvivesRestart(t *testing.T) {
	w, _ := setupDups(t, true)
	first := dropIn(t, w, copyFrom("one", "<m1@example.net>"))
	run(t, w)
	w2 := New(w.S, w.Cfg, zerolog.Nop())
	second := dropIn(t, w2, copyFrom("two", "<m1@example.net>"))
	if err := w2.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	run(t, w2)
	if p, d := files(t, w2, spool.Pickup), files(t, w2, spool.Duplicates); len(p) != 1 || p[first] == "" || d[second] == "" {
		t.Fatalf("pickup/ %v, duplicates/ %v", keys(p), keys(d))
	}
}

// Files kept in duplicates/ past duplicate_keep_days are deleted, with an
// event; younger ones stay.
func TestDuplicatesPurged(t *testing.T) {
	w, log := setupDups(t, true)
	old := filepath.Join(w.S.Dir(spool.Duplicates), spool.NewID()+".eml")
	young := filepath.Join(w.S.Dir(spool.Duplicates), spool.NewID()+".eml")
	for _, p := range []string{old, young} {
		os.WriteFile(p, []byte("X-Sender: <b@x>\r\n"), 0o600)
	}
	long := time.Now().Add(-8 * 24 * time.Hour)
	os.Chtimes(old, long, long)
	run(t, w)
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Error("an 8-day-old duplicate was kept")
	}
	if _, err := os.Stat(young); err != nil {
		t.Error("a fresh duplicate was deleted")
	}
	if !strings.Contains(log.String(), `"event":3027`) {
		t.Error("no 3027 line")
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
