package admin

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/journal"
)

// record writes records into a journal of the spool's state/, as the
// daemons do.
func record(t *testing.T, cfg *config.Config, name string, recs ...[]string) {
	t.Helper()
	j, _, _, err := journal.Open(filepath.Join(cfg.Spool, "state", name))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := j.Append(r...); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	j.Close()
}

func hx(s string) string { return hex.EncodeToString([]byte(s)) }

// history adds to sample's spool the journals' records: the UIDL journal
// of each account, the ledger's attempts, and a message delivered and
// gone (H), whose DSN-less story is in the records alone.
func history(t *testing.T, cfg *config.Config, ids map[string]string) {
	ids["H"] = idAt(t0.Add(-30*time.Minute), 8)
	ids["DSN"] = idAt(t0.Add(-3*time.Hour+time.Minute), 11)
	at := "1796631600" // 2026-12-07 08:20:00 UTC
	record(t, cfg, "office.uidl", []string{"F", hx("U-" + ids["A"]), ids["A"], at}, []string{"F", hx("uidl-of-h"), ids["H"], at})
	record(t, cfg, "shop.uidl", []string{"S", hx("big-one"), ids["E"], at})
	record(t, cfg, "deliverd.ledger",
		[]string{"S", ids["C"], "1"}, []string{"F", ids["C"], "451"},
		[]string{"S", ids["H"], "1"}, []string{"W", ids["H"]}, []string{"S", ids["H"], "2"}, []string{"D", ids["H"]},
		[]string{"S", ids["C"], "2"}, []string{"F", ids["C"], "net"},
		[]string{"S", ids["E"], "1"}, []string{"F", ids["E"], "550", ids["DSN"], hx("x@contoso.local")},
		[]string{"S", ids["F"], "1"})
}

func TestShowEachPlace(t *testing.T) {
	cfg, ids := sample(t)
	cfg.Account[0].Server, cfg.Account[0].TLS = "pop.isp.example:995", "implicit"
	cfg.Account[0].DeliverTo = []string{"alice@contoso.local"}
	history(t, cfg, ids)
	cases := []struct {
		letter string
		want   []string
	}{
		{"A", []string{"in incoming: ", "fetched, waiting for rewrited", "top lines of ", "From: Bob <bob@example.com>",
			"Received field: from server pop.isp.example, account office, UIDL U-" + ids["A"] + ", over POP3S",
			"UIDL journal " + filepath.Join(cfg.Spool, "state", "office.uidl") + ": account office, UIDL U-" + ids["A"] + ", recorded 2026-12-07 08:20:00 UTC, downloaded whole",
			"account office in the config: server pop.isp.example:995", "not routed yet (incoming)", "outcome: not routed yet, so not attempted"}},
		{"B", []string{"in pickup: ", "X-Sender: <bob@example.com>", "sender <bob@example.com> (X-Sender)",
			"recipient <alice@contoso.local>: deliver_to of single-drop account office", "rewrited explain ", "outcome: not attempted yet: waiting in pickup/",
			"no UIDL journal in state/ has a record of it"}},
		{"C", []string{"in deferred: ", "X-Popspool-Attempts: 2", "attempt 1: failed, reply code 451 (the reply text is not recorded)",
			"attempt 2: failed without a reply code", "X-Popspool-Last-Error (the last attempt's reply): dave@contoso.local: 451 4.3.0 try later",
			"X-Popspool-Next-Attempt: 2026-12-07 09:15:00 UTC", "outcome: not delivered yet: deferred", "account shop in the config: server"}},
		{"D", []string{"in failed: ", "set aside in failed/: X-Popspool-Failed: 3003 unreadable header", "outcome: never handed to deliverd: in failed/"}},
		{"E", []string{"in badmail: ", "UIDL big-one", "over max_size: only its header", "attempt 1: failed, reply code 550",
			"delivery status notification " + ids["DSN"] + " for x@contoso.local", "outcome: failed for good: in badmail/; delivery status notification(s) " + ids["DSN"]}},
		{"F", []string{"in tmp/deliverd: ", "deliverd is delivering it", "attempt 1: started; no outcome recorded", "outcome: being delivered now"}},
		{"G", []string{"in tmp/fetchd: ", "fetchd is downloading it", "not routed yet (tmp/fetchd)"}},
		{"H", []string{"not in the spool now", "UIDL uidl-of-h", "attempt 1: outcome unknown: the connection was lost after the final dot",
			"attempt 2: delivered: every recipient accepted it", "the file is gone and its envelope lines with it",
			"outcome: delivered (ledger D record); the time of delivery is not recorded"}},
		{"DSN", []string{"this message is a delivery status notification deliverd made for message " + ids["E"] + ", recipient x@contoso.local"}},
		{"junk", []string{"in incoming: ", "note: header line 1 is not a header field", "no Received field of popspool fetchd"}},
	}
	for _, c := range cases {
		t.Run(c.letter, func(t *testing.T) {
			var out bytes.Buffer
			if err := Show(cfg, ids[c.letter], &out); err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if strings.Contains(out.String(), "body line") {
				t.Error("show printed the body")
			}
			if t.Failed() {
				t.Logf("output:\n%s", out.String())
			}
		})
	}
	// A path or a file name works as well as the id.
	var out bytes.Buffer
	if err := Show(cfg, filepath.Join(cfg.Spool, "deferred", ids["C"]+".eml"), &out); err != nil || !strings.Contains(out.String(), "in deferred: ") {
		t.Fatalf("show by path: %v\n%s", err, out.String())
	}
}

func TestShowUnknownID(t *testing.T) {
	cfg, _ := sample(t)
	for _, id := range []string{idAt(t0, 999), "no-such-file.eml"} {
		err := Show(cfg, id, new(bytes.Buffer))
		if !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), strings.TrimSuffix(id, ".eml")+": no such message in "+cfg.Spool) {
			t.Errorf("Show(%s) = %v", id, err)
		}
	}
	if err := Show(&config.Config{Spool: filepath.Join(t.TempDir(), "none")}, idAt(t0, 1), new(bytes.Buffer)); err == nil {
		t.Error("a spool that does not exist is not an error")
	}
}

// Multi-drop: show names the header field that gave each recipient.
func TestShowRoutingNamesTheHeader(t *testing.T) {
	fixed(t, t0)
	cfg := testSpool(t)
	cfg.Account = []config.Account{{Name: "domain", Routing: config.Routing{LocalDomains: []string{"contoso.local"},
		Aliases: map[string]string{"sales@contoso.local": "bob@contoso.local"}, EnvelopeHeaders: []string{"Delivered-To", "X-Original-To"}}}}
	id := idAt(t0.Add(-time.Minute), 1)
	put(t, cfg, "pickup", id+".eml", "X-Sender: <eve@example.com>\r\nX-Receiver: <alice@contoso.local> ORCPT=rfc822;alice@contoso.local\r\n"+
		"X-Receiver: <bob@contoso.local> ORCPT=rfc822;sales@contoso.local\r\n", "domain",
		"X-Original-To: sales@contoso.local\r\nDelivered-To: isp-box@isp.example\r\nDelivered-To: alice@contoso.local\r\nTo: all@contoso.local\r\n")
	var out bytes.Buffer
	if err := Show(cfg, id, &out); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"recipient <alice@contoso.local>: multi-drop account domain; alice@contoso.local is in the header field Delivered-To (occurrence 2 from the top)",
		"recipient <bob@contoso.local>: multi-drop account domain; original recipient sales@contoso.local (ORCPT), rewritten by an alias or deliver_to; sales@contoso.local is in the header field X-Original-To (occurrence 1 from the top)",
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q\n%s", w, out.String())
		}
	}
}

// snapshot is every file and folder under root: content and mtime.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		v := fi.ModTime().String() + " " + fi.Mode().String()
		if !d.IsDir() {
			b, _ := os.ReadFile(path)
			v += " " + string(b)
		}
		m[path] = v
		return nil
	})
	return m
}

// Queue and show change nothing: not the journals, the ledger, the
// files, nor a folder (no file created or removed), even with a torn
// ledger tail, which the daemons would truncate.
func TestQueueAndShowAreReadOnly(t *testing.T) {
	cfg, ids := sample(t)
	history(t, cfg, ids)
	ledger := filepath.Join(cfg.Spool, "state", "deliverd.ledger")
	f, _ := os.OpenFile(ledger, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("0badc0de S torn")
	f.Close()
	past := t0.Add(-time.Hour)
	filepath.WalkDir(cfg.Spool, func(path string, d fs.DirEntry, err error) error { return os.Chtimes(path, past, past) })
	before := snapshot(t, cfg.Spool)
	if len(before) < 20 {
		t.Fatalf("snapshot of %d entries", len(before))
	}
	for _, asJSON := range []bool{false, true} {
		if err := Queue(cfg, Filter{}, asJSON, new(bytes.Buffer)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		if err := Show(cfg, id, new(bytes.Buffer)); err != nil {
			t.Fatal(err)
		}
	}
	Show(cfg, idAt(t0, 12345), new(bytes.Buffer))
	after := snapshot(t, cfg.Spool)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s changed:\n  before %.120q\n  after  %.120q", p, v, after[p])
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d entries before, %d after", len(before), len(after))
	}
}
