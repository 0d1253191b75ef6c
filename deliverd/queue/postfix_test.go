package queue

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"example.org/popspool/deliverd/smtpc"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/spool"
	"example.org/popspool/spooltest/postfix"
	"example.org/popspool/spooltest/samples"
)

// Tests against a real Postfix (spooltest/postfix): skipped without root
// or the postfix package, unless POPSPOOL_REQUIRE_REAL=1.

func postfixQueue(t *testing.T, pf *postfix.Server, conns int) *Queue {
	t.Helper()
	target, err := smtpc.ParseTarget("smtp://" + pf.Addr)
	if err != nil {
		t.Fatal(err)
	}
	q := newQueue(t, &SMTP{Target: target, Opt: smtpc.Options{Helo: "gw.popspool.test"}})
	q.Cfg.Deliver.Postmaster = pf.Address("postmaster")
	q.Cfg.Deliver.Connections = conns
	q.Hostname = "gw.popspool.test"
	t.Cleanup(func() { q.Target.Close() })
	return q
}

func putMsg(t testing.TB, q *Queue, sender string, msg []byte, rcpts ...string) string {
	t.Helper()
	id := spool.NewID()
	var b bytes.Buffer
	envelope.Envelope{HasSender: true, Sender: sender, Receivers: rcpts}.Write(&b)
	b.Write(msg)
	p := filepath.Join(q.S.Dir(spool.Pickup), id+".eml")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	os.Chtimes(p, old, old)
	return id
}

// wire is what an SMTP client puts on the wire for a message: bare LFs
// become CRLF and the last line is ended (RFC 5321 §2.3.8, §4.1.1.4).
func wire(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
	if len(b) > 0 && !bytes.HasSuffix(b, []byte("\r\n")) {
		b = append(b, '\r', '\n')
	}
	return b
}

func TestPostfixDeliversSamplesAndBounces(t *testing.T) {
	pf := postfix.Start(t, postfix.Options{})
	q := postfixQueue(t, pf, 4)
	alice, bob, pm := pf.Address("alice"), pf.Address("bob"), pf.Address("postmaster")
	want := map[string][][]byte{}
	for i, name := range samples.Names() {
		b, err := samples.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		rcpts := []string{alice}
		if i%3 == 0 {
			rcpts = append(rcpts, bob)
		}
		putMsg(t, q, "sender@example.net", b, rcpts...)
		for _, r := range rcpts {
			want[r] = append(want[r], wire(b))
		}
	}
	unknown := putMsg(t, q, "sender@example.net", []byte("Subject: to nobody\r\n\r\nx\r\n"), "nobody@popspool.test")
	mixed := putMsg(t, q, "sender@example.net", []byte("Subject: mixed\r\n\r\ny\r\n"), bob, "ghost@popspool.test")
	want[bob] = append(want[bob], []byte("Subject: mixed\r\n\r\ny\r\n"))

	if err := q.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	total := len(want[alice]) + len(want[bob]) + 2 // + two DSNs
	all := pf.WaitCount(t, total, time.Minute)
	for _, r := range []string{alice, bob} {
		got := all[r]
		if len(got) != len(want[r]) {
			t.Fatalf("%s: %d messages, want %d\n%s", r, len(got), len(want[r]), postfix.String(all))
		}
		left := append([][]byte(nil), want[r]...)
	next:
		for _, m := range got {
			body := postfix.Body(m.Data)
			for i, w := range left {
				if bytes.Equal(body, w) {
					left = append(left[:i], left[i+1:]...)
					continue next
				}
			}
			t.Errorf("%s: delivered message matches no sample (changed in transit?): %.300q", r, body)
		}
	}
	// The unknown recipient: badmail/ and a DSN; the mixed one: bob got
	// it, ghost's part is in badmail/ with only ghost left.
	env, _ := read(t, q, spool.Badmail, unknown)
	if !strings.Contains(env.LastError, "550 5.1.1") {
		t.Errorf("badmail last error %q", env.LastError)
	}
	env, _ = read(t, q, spool.Badmail, mixed)
	if strings.Join(env.Receivers, ",") != "ghost@popspool.test" {
		t.Errorf("mixed badmail receivers %v", env.Receivers)
	}
	dsns := all[pm]
	if len(dsns) != 2 {
		t.Fatalf("postmaster got %d messages, want 2 DSNs", len(dsns))
	}
	seen := ""
	for _, d := range dsns {
		text := string(d.Data)
		if postfix.Header(d.Data, "Return-Path") != "<>" || !strings.Contains(text, "report-type=delivery-status") ||
			!regexp.MustCompile(`Status: 5\.1\.1\nDiagnostic-Code: smtp; 550 5\.1\.1 <\w+@popspool\.test>`).MatchString(text) {
			t.Errorf("DSN:\n%s", text)
		}
		seen += text
	}
	if !strings.Contains(seen, "Final-Recipient: rfc822; nobody@popspool.test") || !strings.Contains(seen, "Final-Recipient: rfc822; ghost@popspool.test") || strings.Contains(seen, "Final-Recipient: rfc822; bob@") {
		t.Errorf("DSNs name the wrong recipients")
	}
	for _, f := range []string{spool.Pickup, spool.Deferred} {
		if left, _ := os.ReadDir(q.S.Dir(f)); len(left) != 0 {
			t.Errorf("%s/ not empty: %d files", f, len(left))
		}
	}
}

// Many 10 KB messages; Postfix is stopped in the middle (messages are
// deferred) and started again: all are delivered, none twice.
func TestPostfixStoppedInTheMiddle(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	pf := postfix.Start(t, postfix.Options{})
	q := postfixQueue(t, pf, 4)
	q.Cfg.Deliver.Retry = []config.Duration{config.Duration(300 * time.Millisecond)}
	q.Cfg.Rescan = config.Duration(200 * time.Millisecond)
	alice := pf.Address("alice")
	for i := range n {
		putMsg(t, q, "sender@example.net", tenKB(i), alice)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx, false) }()
	deadline := time.Now().Add(3 * time.Minute)
	for pf.Count()+pf.Queued() < n/3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := pf.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // messages meet the closed port and are deferred
	deferred, _ := os.ReadDir(q.S.Dir(spool.Deferred))
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	all := pf.WaitCount(t, n, 3*time.Minute)
	for !folderEmpty(q, spool.Pickup, spool.Deferred) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seqs := map[string]int{}
	for _, m := range all[alice] {
		seqs[postfix.Header(m.Data, "X-Test-Seq")]++
	}
	dups := 0
	for _, c := range seqs {
		dups += c - 1
	}
	// A W record means "maybe delivered": Postfix stopped between our
	// final dot and its reply may or may not have queued the message. So
	// every duplicate must be counted, not every count a duplicate.
	if len(seqs) != n || dups > q.Ledger.Windows() {
		t.Fatalf("%d distinct of %d messages, %d duplicates, %d counted windows", len(seqs), n, dups, q.Ledger.Windows())
	}
	if !folderEmpty(q, spool.Pickup, spool.Deferred, spool.Badmail) {
		t.Fatal("spool folders not empty")
	}
	t.Logf("%d messages, %d deferred while Postfix was down, %d duplicates, %d smtp_window counted", n, len(deferred), dups, q.Ledger.Windows())
}

func tenKB(i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: sender@example.net\r\nTo: alice@popspool.test\r\nSubject: message %d\r\nX-Test-Seq: %d\r\n\r\n", i, i)
	for b.Len() < 10<<10 {
		fmt.Fprintf(&b, "%05d 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n", b.Len())
	}
	return b.Bytes()
}

func folderEmpty(q *Queue, folders ...string) bool {
	for _, f := range folders {
		if left, _ := os.ReadDir(q.S.Dir(f)); len(left) != 0 {
			return false
		}
	}
	left, _, _, _ := q.S.Leftovers()
	return len(left) == 0
}
