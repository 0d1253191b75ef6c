package e2e

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.org/popspool/shared/admin"
	"example.org/popspool/shared/config"
	"example.org/popspool/spooltest/harness"
)

// bobMail is one message in the POP3 mailbox; the test server's UIDL of
// a file is its name without .eml.
const bobMail = "Return-Path: <bob@example.com>\r\nFrom: Bob <bob@example.com>\r\nTo: alice@isp.example\r\n" +
	"Subject: this morning\r\nMessage-ID: <m1@example.com>\r\n\r\nHello Alice.\r\n"

func putBobMail(t *testing.T, f *harness.Flow) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.Box, "bob-morning.eml"), []byte(bobMail), 0o600); err != nil {
		t.Fatal(err)
	}
}

// queueJSON runs Queue with -json and decodes its lines.
func queueJSON(t *testing.T, cfg *config.Config, flt admin.Filter) []map[string]any {
	t.Helper()
	var out bytes.Buffer
	if err := admin.Queue(cfg, flt, true, &out); err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("queue -json line %q: %v", l, err)
		}
		list = append(list, m)
	}
	return list
}

func show(t *testing.T, cfg *config.Config, id string) string {
	t.Helper()
	var out bytes.Buffer
	if err := admin.Show(cfg, id, &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func mustContain(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

// A real flow, one stage at a time: queue sees the message where each
// daemon left it, and show, once it is delivered and its file gone, still
// names its account, its UIDL and the outcome from the journals.
func TestAdminFollowsOneMessage(t *testing.T) {
	f := newFlow(t)
	putBobMail(t, f)
	if err := f.Run("fetchd", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f.Config)
	if err != nil {
		t.Fatal(err)
	}
	list := queueJSON(t, cfg, admin.Filter{Sender: "bob@", Newer: time.Hour})
	if len(list) != 1 || list[0]["where"] != "incoming" || list[0]["account"] != f.Opt.Account {
		t.Fatalf("after fetchd: %v", list)
	}
	id := list[0]["id"].(string)
	mustContain(t, "show in incoming/", show(t, cfg, id), "in incoming: ", "account "+f.Opt.Account+", UIDL bob-morning", "not routed yet")

	if err := f.Run("rewrited", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	list = queueJSON(t, cfg, admin.Filter{Folders: []string{"pickup"}})
	if len(list) != 1 || list[0]["id"] != id || list[0]["sender"] != "bob@example.com" || list[0]["recipients"].([]any)[0] != f.Opt.DeliverTo {
		t.Fatalf("after rewrited: %v", list)
	}
	mustContain(t, "show in pickup/", show(t, cfg, id), "in pickup: ", "recipient <"+f.Opt.DeliverTo+">: deliver_to of single-drop account "+f.Opt.Account,
		"not attempted yet")

	if err := f.Run("deliverd", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if list = queueJSON(t, cfg, admin.Filter{}); len(list) != 0 {
		t.Fatalf("after deliverd the spool still holds %v", list)
	}
	mustContain(t, "show after delivery", show(t, cfg, id), "not in the spool now",
		"UIDL journal "+filepath.Join(f.Spool, "state", f.Opt.Account+".uidl")+": account "+f.Opt.Account+", UIDL bob-morning",
		"attempt 1: delivered", "outcome: delivered (ledger D record)")
}

// A target that refuses connections: the message is deferred, and queue
// and show give the attempt count, the next attempt and the last error,
// while deliverd runs and once it stopped.
func TestAdminShowsADeferredMessage(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	f, err := harness.New(t.TempDir(), bins, harness.Options{Target: "smtp://" + closed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	putBobMail(t, f)
	startAll(t, f)
	cfg, err := config.Load(f.Config)
	if err != nil {
		t.Fatal(err)
	}
	ok := harness.WaitFor(30*time.Second, func() bool {
		got, _, err := admin.Entries(cfg, admin.Filter{Folders: []string{"deferred"}}) // an error until the daemons made the spool
		return err == nil && len(got) == 1
	})
	if !ok {
		t.Fatalf("no deferred message: %v", queueJSON(t, cfg, admin.Filter{}))
	}
	// Stopped, deliverd leaves the message in deferred/ for good; the
	// listing above was made while it ran.
	if err := f.Stop("deliverd", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	list := queueJSON(t, cfg, admin.Filter{Folders: []string{"deferred"}})
	if len(list) != 1 {
		t.Fatalf("deferred/ after deliverd stopped: %v", list)
	}
	m := list[0]
	if m["attempts"].(float64) < 1 || m["next_attempt"] == nil || !strings.Contains(m["last_error"].(string), f.Opt.DeliverTo) {
		t.Fatalf("deferred entry: %v", m)
	}
	var table bytes.Buffer
	if err := admin.Queue(cfg, admin.Filter{Account: f.Opt.Account}, false, &table); err != nil {
		t.Fatal(err)
	}
	mustContain(t, "queue", table.String(), m["id"].(string)+"  deferred", "<bob@example.com>", "-- 1 message(s)")
	mustContain(t, "show of a deferred message", show(t, cfg, m["id"].(string)), "in deferred: ", "UIDL bob-morning",
		"attempt 1: failed without a reply code", "X-Popspool-Last-Error (the last attempt's reply): "+f.Opt.DeliverTo, "outcome: not delivered yet: deferred")
}
