package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"example.org/popspool/deliverd/smtpc"
	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/spool"
)

// The knowledge-base articles (../shared/seeds) and the other faults of
// issue 5, at the deliverd level: a message flows from pickup/ to a
// scripted server and is delivered exactly once, not retried to expiry.

func fakeQueue(t *testing.T, f *fake, o smtpc.Options) *Queue {
	t.Helper()
	target, err := smtpc.ParseTarget(f.url())
	if err != nil {
		t.Fatal(err)
	}
	if o.Timeouts == (smtpc.Timeouts{}) {
		o.Timeouts = smtpc.Timeouts{Connect: 5 * time.Second, Greeting: 10 * time.Second, Command: 10 * time.Second,
			Mail: 10 * time.Second, Rcpt: 10 * time.Second, DataInit: 10 * time.Second, DataBlock: 10 * time.Second, FinalDot: 10 * time.Second}
	}
	q := newQueue(t, &SMTP{Target: target, Opt: o})
	q.Cfg.Deliver.Connections = 1
	t.Cleanup(func() { q.Target.Close() })
	return q
}

func putN(t *testing.T, q *Queue, n int, rcpts ...string) []string {
	var ids []string
	for i := range n {
		ids = append(ids, putMsg(t, q, "sender@example.net", []byte(fmt.Sprintf("Subject: m%d\r\n\r\nbody of m%d\r\n", i, i)), rcpts...))
	}
	return ids
}

// runOnce runs the queue once and checks nothing is left anywhere.
func runOnce(t *testing.T, q *Queue) {
	t.Helper()
	if err := q.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
}

func wantFolders(t *testing.T, q *Queue, pickup, deferred, badmail int) {
	t.Helper()
	for _, c := range []struct {
		f    string
		want int
	}{{spool.Pickup, pickup}, {spool.Deferred, deferred}, {spool.Badmail, badmail}} {
		if l, _ := os.ReadDir(q.S.Dir(c.f)); len(l) != c.want {
			t.Errorf("%s/ holds %d files, want %d", c.f, len(l), c.want)
		}
	}
}

// Article 001 (Q301401): a greeting and EHLO naming a host that is not an
// FQDN is accepted, with smtpc reading the greeting (opportunistic
// STARTTLS) and with go-smtp reading it (none).
func TestSeed001GreetingNotFQDN(t *testing.T) {
	for _, mode := range []string{smtpc.StartTLSOpportunistic, smtpc.StartTLSNone} {
		f := newFake(t)
		f.Greeting = []string{"220 exchange2000\r\n"}
		f.EHLO = []string{"250-exchange2000 Hello [127.0.0.1]\r\n250-X-EXPS GSSAPI NTLM\r\n250 SIZE\r\n"}
		q := fakeQueue(t, f, smtpc.Options{StartTLS: mode})
		putN(t, q, 2, "alice@l")
		runOnce(t, q)
		wantFolders(t, q, 0, 0, 0)
		if f.copies("body of m0") != 1 || f.copies("body of m1") != 1 {
			t.Errorf("%s: copies %d, %d; want 1 each", mode, f.copies("body of m0"), f.copies("body of m1"))
		}
	}
}

// Articles 002 and 003 (KB912341): DATA answered "354-Line 1", a 2 s
// pause, "354 Send message". Delivered once; not retried, no duplicate.
func TestSeed002MultilineDataReplyWithPause(t *testing.T) {
	f := newFake(t)
	f.DataGo = []string{"354-Line 1\r\n", "354 Send message\r\n"}
	f.Pause = 2 * time.Second
	q := fakeQueue(t, f, smtpc.Options{StartTLS: smtpc.StartTLSNone})
	ids := putN(t, q, 1, "alice@l", "bob@l")
	start := time.Now()
	runOnce(t, q)
	wantFolders(t, q, 0, 0, 0)
	_, mails, dots := f.counts()
	if mails != 1 || dots != 1 || f.copies("body of m0") != 1 || !q.Ledger.Delivered(ids[0]) {
		t.Fatalf("MAIL %d, final dots %d, copies %d, delivered %v; want 1, 1, 1, true", mails, dots, f.copies("body of m0"), q.Ledger.Delivered(ids[0]))
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("took %v: the pause was not waited for", d)
	}
}

// Multi-line replies at every step, with pauses, and bare reply codes.
func TestMultilineEverywhereAndBareCodes(t *testing.T) {
	f := newFake(t)
	f.Greeting = []string{"220-fake.test\r\n", "220-wait for it\r\n", "220\r\n"}
	f.EHLO = []string{"250-fake.test\r\n", "250-pipelining\r\n250-8bitmime\r\n", "250 size 100000\r\n"}
	f.DataGo = []string{"354-one\r\n", "354\r\n"}
	f.Pause = 100 * time.Millisecond
	f.Mail = func(int) string { return "250-sender\r\n250 ok" }
	f.Rcpt = func(string) string { return "250" }
	f.Dot = func(int) string { return "250-queued\r\n250 2.0.0 as X" }
	q := fakeQueue(t, f, smtpc.Options{StartTLS: smtpc.StartTLSNone})
	putN(t, q, 3, "alice@l")
	runOnce(t, q)
	wantFolders(t, q, 0, 0, 0)
	if s, mails, dots := f.counts(); s != 1 || mails != 3 || dots != 3 {
		t.Fatalf("sessions %d MAIL %d dots %d; want 1, 3, 3", s, mails, dots)
	}
}

// 421 in the middle of a session: the message is deferred, the session
// redialled, and the retry delivers it once.
func TestServiceClosingMidSession(t *testing.T) {
	f := newFake(t)
	f.Mail = func(n int) string {
		if n == 2 {
			return "421 4.3.2 shutting down"
		}
		return ""
	}
	q := fakeQueue(t, f, smtpc.Options{StartTLS: smtpc.StartTLSNone})
	now := time.Now()
	q.nowFunc = func() time.Time { return now }
	putN(t, q, 3, "alice@l")
	runOnce(t, q)
	wantFolders(t, q, 0, 1, 0)
	now = now.Add(2 * time.Minute)
	runOnce(t, q)
	wantFolders(t, q, 0, 0, 0)
	for i := range 3 {
		if c := f.copies(fmt.Sprintf("body of m%d", i)); c != 1 {
			t.Errorf("m%d: %d copies", i, c)
		}
	}
	// Session 1: m0, then 421 for m1; session 2: m2; the queue is then
	// idle and says QUIT; session 3: m1's retry.
	if s, _, _ := f.counts(); s != 3 {
		t.Errorf("%d sessions, want 3", s)
	}
}

// The connection lost after the final dot (RFC 1047): counted as an
// smtp_window, retried, and the target has the one allowed duplicate.
func TestConnectionLostAfterDot(t *testing.T) {
	f := newFake(t)
	f.Dot = func(n int) string {
		if n == 1 {
			return "close"
		}
		return ""
	}
	q := fakeQueue(t, f, smtpc.Options{StartTLS: smtpc.StartTLSNone})
	now := time.Now()
	q.nowFunc = func() time.Time { return now }
	ids := putN(t, q, 1, "alice@l")
	runOnce(t, q)
	wantFolders(t, q, 0, 1, 0)
	env, _ := read(t, q, spool.Deferred, ids[0])
	if q.Ledger.Windows() != 1 || !strings.Contains(env.LastError, "after the final dot") {
		t.Fatalf("windows %d, last error %q", q.Ledger.Windows(), env.LastError)
	}
	now = now.Add(2 * time.Minute)
	runOnce(t, q)
	wantFolders(t, q, 0, 0, 0)
	if c := f.copies("body of m0"); c != 2 || !q.Ledger.Delivered(ids[0]) {
		t.Fatalf("%d copies (want 2: the one counted duplicate), delivered %v", c, q.Ledger.Delivered(ids[0]))
	}
}

// 421 as the reply to the final dot (a server shutting down) is a
// verdict, not a window: RFC 5321 §4.2.5, "When an SMTP
// server returns a temporary error status (4yz) code after the DATA
// command is completed with <CRLF>.<CRLF>, it MUST NOT make a subsequent
// attempt to deliver that message", and §3.8 lets 421 follow any command.
// So the message is deferred without a W record and the retry delivers
// the one copy; the closed session is redialled.
func TestServiceClosingAfterDot(t *testing.T) {
	f := newFake(t)
	f.Dot = func(n int) string {
		if n == 1 {
			return "421 4.3.0 mx.test Server shutdown"
		}
		return ""
	}
	q := fakeQueue(t, f, smtpc.Options{StartTLS: smtpc.StartTLSNone})
	now := time.Now()
	q.nowFunc = func() time.Time { return now }
	ids := putN(t, q, 1, "alice@l")
	runOnce(t, q)
	wantFolders(t, q, 0, 1, 0)
	env, _ := read(t, q, spool.Deferred, ids[0])
	if q.Ledger.Windows() != 0 || !strings.Contains(env.LastError, "421 4.3.0") {
		t.Fatalf("windows %d, last error %q", q.Ledger.Windows(), env.LastError)
	}
	now = now.Add(2 * time.Minute)
	runOnce(t, q)
	wantFolders(t, q, 0, 0, 0)
	if c := f.copies("body of m0"); c != 1 || !q.Ledger.Delivered(ids[0]) || q.Ledger.Windows() != 0 {
		t.Fatalf("%d copies, delivered %v, windows %d", c, q.Ledger.Delivered(ids[0]), q.Ledger.Windows())
	}
	if s, _, _ := f.counts(); s != 2 {
		t.Errorf("%d sessions, want 2 (421 closes the first)", s)
	}
}

// A reply to the final dot that never comes: the FinalDot time-out, then
// as the lost connection.
func TestReplyNeverComes(t *testing.T) {
	f := newFake(t)
	f.Dot = func(n int) string {
		if n == 1 {
			return "hang"
		}
		return ""
	}
	o := smtpc.Options{StartTLS: smtpc.StartTLSNone}
	o.Timeouts = smtpc.Timeouts{Command: 5 * time.Second, FinalDot: 500 * time.Millisecond}
	q := fakeQueue(t, f, o)
	putN(t, q, 1, "alice@l")
	runOnce(t, q)
	wantFolders(t, q, 0, 1, 0)
	if q.Ledger.Windows() != 1 {
		t.Fatalf("windows %d", q.Ledger.Windows())
	}
}

// 452 on RCPT for one recipient: the others are delivered, the file is
// deferred with that recipient only.
func TestRcpt4xxDefersOnlyThatRecipient(t *testing.T) {
	f := newFake(t)
	f.Rcpt = func(r string) string {
		if r == "full@l" {
			return "452 4.2.2 mailbox full"
		}
		return ""
	}
	q := fakeQueue(t, f, smtpc.Options{StartTLS: smtpc.StartTLSNone})
	ids := putN(t, q, 1, "alice@l", "full@l", "bob@l")
	runOnce(t, q)
	wantFolders(t, q, 0, 1, 0)
	env, _ := read(t, q, spool.Deferred, ids[0])
	if strings.Join(env.Receivers, ",") != "full@l" || env.LastError != "full@l: 452 4.2.2 mailbox full" {
		t.Fatalf("deferred %+v", env)
	}
	if f.copies("body of m0") != 1 || strings.Join(f.rcptsOf(0), ",") != "alice@l,bob@l" {
		t.Fatalf("got %+v", f.got)
	}
}

// A message larger than the server's SIZE is bounced at once (DSN to the
// postmaster), not retried: no MAIL is ever sent for it.
func TestLargerThanSizeBouncedAtOnce(t *testing.T) {
	f := newFake(t)
	f.EHLO = []string{"250-fake.test\r\n250 SIZE 2000\r\n"}
	q := fakeQueue(t, f, smtpc.Options{StartTLS: smtpc.StartTLSNone})
	big := putMsg(t, q, "sender@example.net", []byte("Subject: big\r\n\r\n"+strings.Repeat("x", 3000)+"\r\n"), "alice@l")
	runOnce(t, q)
	wantFolders(t, q, 0, 0, 1)
	env, _ := read(t, q, spool.Badmail, big)
	if !strings.Contains(env.LastError, "552 5.3.4") || env.Attempts != 1 {
		t.Fatalf("badmail %+v", env)
	}
	// The only message the server saw is the DSN, to the postmaster.
	if _, mails, _ := f.counts(); mails != 1 || f.copies("Status: 5.3.4") != 1 || strings.Join(f.rcptsOf(0), ",") != "postmaster@l" {
		t.Fatalf("MAIL %d, got %+v", mails, f.got)
	}
}

// An operator's `mv deferred/x.eml pickup/` retries at once, whatever the
// file's X-Popspool-Next-Attempt says.
func TestMoveFromDeferredRetriesAtOnce(t *testing.T) {
	f := newFake(t)
	var down atomic.Bool
	down.Store(true)
	f.Rcpt = func(string) string {
		if down.Load() {
			return "451 4.3.0 try later"
		}
		return ""
	}
	q := fakeQueue(t, f, smtpc.Options{StartTLS: smtpc.StartTLSNone})
	q.Cfg.Deliver.Retry[0] = q.Cfg.Deliver.Retry[1] // an hour
	ids := putN(t, q, 1, "alice@l")
	runOnce(t, q)
	wantFolders(t, q, 0, 1, 0)
	down.Store(false)
	runOnce(t, q) // not due: nothing happens
	wantFolders(t, q, 0, 1, 0)
	name := ids[0] + ".eml"
	if err := os.Rename(filepath.Join(q.S.Dir(spool.Deferred), name), filepath.Join(q.S.Dir(spool.Pickup), name)); err != nil {
		t.Fatal(err)
	}
	runOnce(t, q)
	wantFolders(t, q, 0, 0, 0)
	if f.copies("body of m0") != 1 {
		t.Fatal("not delivered after mv to pickup/")
	}
}

// RCPT carries ORCPT with the original address from the envelope (RFC
// 3461) whenever the server offers DSN, unless deliver.dsn = false (issue
// 15.2: it was sent only with dsn = true, which nobody set).
func TestORCPT(t *testing.T) {
	no, yes := false, true
	for _, c := range []struct {
		dsn     *bool
		offered bool
		want    string
	}{
		{nil, true, "RCPT TO:<alice@l> ORCPT=RFC822;alice+2Bx@isp.example"}, // xtext: "+" is "+2B"
		{&yes, true, "RCPT TO:<alice@l> ORCPT=RFC822;alice+2Bx@isp.example"},
		{nil, false, "RCPT TO:<alice@l>"},
		{&no, true, "RCPT TO:<alice@l>"},
	} {
		f := newFake(t)
		if c.offered {
			f.EHLO = []string{"250-fake.test\r\n250-DSN\r\n250 8BITMIME\r\n"}
		}
		q := fakeQueue(t, f, smtpc.Options{StartTLS: smtpc.StartTLSNone})
		q.Cfg.Deliver.DSN = c.dsn
		var b strings.Builder
		envelope.Envelope{HasSender: true, Sender: "s@x", Receivers: []string{"alice@l", "bob@l"},
			Originals: map[string]string{"alice@l": "alice+x@isp.example"}}.Write(&b)
		p := filepath.Join(q.S.Dir(spool.Pickup), spool.NewID()+".eml")
		os.WriteFile(p, []byte(b.String()+body), 0o600)
		os.Chtimes(p, time.Now().Add(-time.Minute), time.Now().Add(-time.Minute))
		runOnce(t, q)
		f.mu.Lock()
		lines := strings.Join(f.rcptLines, "|")
		f.mu.Unlock()
		if want := c.want + "|RCPT TO:<bob@l>"; lines != want {
			t.Errorf("dsn %v, offered %v: RCPT lines %q, want %q", c.dsn != nil && *c.dsn, c.offered, lines, want)
		}
	}
}
