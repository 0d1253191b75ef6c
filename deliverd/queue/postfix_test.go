package queue

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

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
// deferred) and started again: all are delivered, none sent twice but in
// a counted window. deliverd's log goes to deliverd.log in Postfix's
// folder, which is kept when the test fails.
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
	logf, err := os.Create(filepath.Join(pf.Dir, "deliverd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	q.Log = zerolog.New(logf).With().Timestamp().Logger()
	ids := make([]string, n)
	for i := range n {
		ids[i] = putMsg(t, q, "sender@example.net", tenKB(i), alice)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
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
	// deliverd first: a retry after an unknown outcome may still be on
	// its way when the Maildirs already hold n messages.
	for !folderEmpty(q, spool.Pickup, spool.Deferred) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	all := pf.WaitCount(t, n, 3*time.Minute)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, bySeq := tally(all[alice])
	// A W record means "maybe delivered": Postfix stopped between our
	// final dot and its reply may or may not have queued the message. So
	// every message sent twice must be counted, not every count a second
	// copy. Postfix's own second deliveries of one queue file are not
	// deliverd's doing and are only reported.
	if got.seqs != n || got.resent > q.Ledger.Windows() {
		for seq, copies := range bySeq {
			if len(copies) < 2 {
				continue
			}
			i, _ := strconv.Atoi(seq)
			t.Logf("X-Test-Seq %s: id %s, %d copies; deliverd's events:\n%s", seq, ids[i], len(copies), grepLines(logf.Name(), ids[i]))
			for _, m := range copies {
				t.Logf("copy %s, Postfix queue id %s", m.Path, postfix.QueueID(m.Data))
			}
		}
		t.Fatalf("%d distinct of %d messages, %d sent again, %d counted windows (and %d copies Postfix delivered twice itself)",
			got.seqs, n, got.resent, q.Ledger.Windows(), got.redelivered)
	}
	if !folderEmpty(q, spool.Pickup, spool.Deferred, spool.Badmail) {
		t.Fatal("spool folders not empty")
	}
	t.Logf("%d messages, %d deferred while Postfix was down, %d sent again, %d smtp_window counted, %d redelivered by Postfix itself",
		n, len(deferred), got.resent, q.Ledger.Windows(), got.redelivered)
}

// counts is what the Maildir copies of the test messages tell.
type counts struct {
	seqs int // distinct messages (X-Test-Seq)
	// resent: transactions beyond the first per message. Postfix gives
	// each transaction it accepts its own queue file, so these are the
	// messages deliverd handed over more than once.
	resent int
	// redelivered: copies beyond the first per queue file: Postfix,
	// stopped between its Maildir write and its queue file's update,
	// delivered the same queue file again (spooltest/postfix Stop). No
	// SMTP client can see or prevent that.
	redelivered int
}

// tally counts the copies by X-Test-Seq and by Postfix queue id. A copy
// without a queue id counts as a transaction of its own.
func tally(msgs []postfix.Message) (counts, map[string][]postfix.Message) {
	bySeq := map[string][]postfix.Message{}
	for _, m := range msgs {
		seq := postfix.Header(m.Data, "X-Test-Seq")
		bySeq[seq] = append(bySeq[seq], m)
	}
	c := counts{seqs: len(bySeq)}
	for _, copies := range bySeq {
		tx := map[string]bool{}
		for _, m := range copies {
			id := postfix.QueueID(m.Data)
			if id == "" {
				id = "path:" + m.Path
			}
			tx[id] = true
		}
		c.resent += len(tx) - 1
		c.redelivered += len(copies) - len(tx)
	}
	return c, bySeq
}

// The flake TestPostfixStoppedInTheMiddle had: Postfix stopped between
// virtual(8)'s Maildir write and qmgr's record of it delivers that queue
// file again at the next start. Maillog of the failing run:
//
//	smtpd[32276]: 53D07988AB3: client=unknown[127.0.0.1]
//	qmgr[32267]: 53D07988AB3: from=<sender@example.net>, size=10424, nrcpt=1 (queue active)
//	(stop: no status=sent, yet the Maildir holds a copy written at 00:58:31)
//	qmgr[32763]: 53D07988AB3: from=<sender@example.net>, size=10424, nrcpt=1 (queue active)
//	virtual[32767]: 53D07988AB3: to=<alice@popspool.test>, ... delay=6.6, ... status=sent
//
// 1000 transactions in the log, 1001 copies, both copies of X-Test-Seq
// 337 "with ESMTP id 53D07988AB3": one transaction, so no window to count.
// Two queue ids are two transactions, and then a window must be counted.
func TestTallyTellsPostfixRedeliveryFromResend(t *testing.T) {
	copyOf := func(seq, queueID, name string) postfix.Message {
		data := "Return-Path: <sender@example.net>\nDelivered-To: alice@popspool.test\n" +
			"Received: from gw.popspool.test (unknown [127.0.0.1])\n\tby mx.popspool.test (Postfix) with ESMTP id " + queueID + "\n" +
			"\tfor <alice@popspool.test>; Mon, 23 Nov 2026 00:58:31 +0000 (UTC)\n" +
			"From: sender@example.net\nX-Test-Seq: " + seq + "\n\nbody\n"
		return postfix.Message{Path: "new/" + name, Data: []byte(data)}
	}
	got, _ := tally([]postfix.Message{
		copyOf("336", "53D07988AB1", "a"),
		copyOf("337", "53D07988AB3", "b"), // Postfix's own second delivery
		copyOf("337", "53D07988AB3", "c"),
		copyOf("346", "7BC7E989AD5", "d"), // sent again after a window
		copyOf("346", "5EE979897BD", "e"),
	})
	if want := (counts{seqs: 3, resent: 1, redelivered: 1}); got != want {
		t.Fatalf("tally = %+v, want %+v", got, want)
	}
	// Without a queue id nothing can be told apart: each copy counts as
	// sent again, never as redelivered.
	got, _ = tally([]postfix.Message{
		{Path: "new/x", Data: []byte("X-Test-Seq: 1\n\nx\n")},
		{Path: "new/y", Data: []byte("X-Test-Seq: 1\n\nx\n")},
	})
	if want := (counts{seqs: 1, resent: 1}); got != want {
		t.Fatalf("tally without queue ids = %+v, want %+v", got, want)
	}
}

// grepLines returns the lines of the file at path that contain s.
func grepLines(path, s string) string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
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
