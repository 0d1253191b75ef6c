package queue

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"example.org/popspool/deliverd/smtpc"
	"example.org/popspool/shared/spool"
	"example.org/popspool/spooltest/dovecot"
	"example.org/popspool/spooltest/samples"
)

// Tests against Dovecot's LMTP server (spooltest/dovecot with LMTP, the
// dovecot-lmtpd package), which answers each recipient on its own after
// the final dot (RFC 2033 §4.2): skipped without root or the packages,
// unless POPSPOOL_REQUIRE_REAL=1.
//
// Dovecot 2.3.19 refuses an unknown recipient at RCPT with
// "550 5.1.1 <ghost@popspool.test> User doesn't exist: ghost@popspool.test"
// and answers each accepted one after the dot with
// "250 2.0.0 <alice@popspool.test> <session id> Saved".

// lmtpUsers are the Dovecot users; postmaster takes the DSNs.
var lmtpUsers = map[string]string{"alice": "a", "bob": "b", "carol": "c", "postmaster": "p"}

func lmtpAddr(user string) string { return user + "@popspool.test" }

// lmtpQueue is a queue delivering to d's LMTP port, with STARTTLS (which
// Dovecot offers) verified against d's certificate, and timeouts short
// enough that a hang fails the test instead of stalling it.
func lmtpQueue(t *testing.T, d *dovecot.Dovecot, conns int) *Queue {
	t.Helper()
	target, err := smtpc.ParseTarget("lmtp://" + d.LMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(d.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	short := 20 * time.Second
	opt := smtpc.Options{Helo: "gw.popspool.test", StartTLS: smtpc.StartTLSRequired, TLSConfig: &tls.Config{RootCAs: roots},
		Timeouts: smtpc.Timeouts{Connect: short, Greeting: short, Command: short, Mail: short, Rcpt: short,
			DataInit: short, DataBlock: short, FinalDot: short}}
	q := newQueue(t, &SMTP{Target: target, Opt: opt})
	q.Cfg.Deliver.Postmaster = lmtpAddr("postmaster")
	q.Cfg.Deliver.Connections = conns
	q.Hostname = "gw.popspool.test"
	t.Cleanup(func() { q.Target.Close() })
	return q
}

// runQueue runs q until pickup/ is empty and nothing deferred is due, at
// most a minute.
func runQueue(t *testing.T, q *Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := q.Run(ctx, true); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("the queue did not finish within a minute")
	}
}

// TestLMTPDeliversSamples: every sample, each to two users, arrives once
// in each Maildir with the bytes smtpc sent (Dovecot only prepends its
// trace lines and stores LF line ends).
func TestLMTPDeliversSamples(t *testing.T) {
	d := dovecot.StartWith(t, lmtpUsers, dovecot.Options{LMTP: true})
	q := lmtpQueue(t, d, 2)
	var want [][]byte
	for _, name := range samples.Names() {
		b, err := samples.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		putMsg(t, q, "sender@example.net", b, lmtpAddr("alice"), lmtpAddr("bob"))
		want = append(want, wire(b))
	}
	runQueue(t, q)
	for _, u := range []string{"alice", "bob"} {
		got := d.Messages(t, u)
		if len(got) != len(want) {
			t.Fatalf("%s: %d messages, want %d", u, len(got), len(want))
		}
		left := append([][]byte(nil), want...)
	next:
		for _, m := range got {
			if rp := header(m, "Return-Path"); rp != "<sender@example.net>" {
				t.Errorf("%s: Return-Path %q", u, rp)
			}
			body := dovecot.Body(m)
			for i, w := range left {
				if bytes.Equal(body, w) {
					left = append(left[:i], left[i+1:]...)
					continue next
				}
			}
			t.Errorf("%s: delivered message matches no sample (changed in transit?): %.300q", u, body)
		}
	}
	if !folderEmpty(q, spool.Pickup, spool.Deferred, spool.Badmail) {
		t.Fatal("spool folders not empty")
	}
}

// TestLMTPUnknownRecipient: Dovecot's verdict per recipient. alice gets
// the message; ghost is refused for good: the message goes to badmail/
// with only ghost on it, and one DSN, published in pickup/, reaches the
// postmaster. Running the queue again, later, delivers nothing twice.
func TestLMTPUnknownRecipient(t *testing.T) {
	d := dovecot.StartWith(t, lmtpUsers, dovecot.Options{LMTP: true})
	q := lmtpQueue(t, d, 1)
	msg := []byte("From: sender@example.net\r\nSubject: to alice and a ghost\r\n\r\nhello\r\n")
	id := putMsg(t, q, "sender@example.net", msg, lmtpAddr("alice"), lmtpAddr("ghost"))
	runQueue(t, q)

	env, _ := read(t, q, spool.Badmail, id)
	if strings.Join(env.Receivers, ",") != lmtpAddr("ghost") || env.Attempts != 1 ||
		!strings.HasPrefix(env.LastError, "ghost@popspool.test: 550 5.1.1 <ghost@popspool.test> User doesn't exist") {
		t.Fatalf("badmail envelope: receivers %v, attempts %d, last error %q", env.Receivers, env.Attempts, env.LastError)
	}
	checkOnce(t, d, "alice", msg)
	checkDSN(t, d, lmtpAddr("ghost"))

	// Later runs: nothing is due, nothing is sent again.
	q.nowFunc = func() time.Time { return time.Now().Add(3 * time.Hour) }
	runQueue(t, q)
	runQueue(t, q)
	checkOnce(t, d, "alice", msg)
	if n := d.Count(t, "postmaster"); n != 1 {
		t.Fatalf("postmaster has %d messages after the reruns, want the one DSN", n)
	}
	if !folderEmpty(q, spool.Pickup, spool.Deferred) {
		t.Fatal("pickup/ or deferred/ not empty")
	}
}

// TestLMTPRetryOnlyTheDeferredRecipient: ghost is refused for good at
// RCPT; after the final dot alice's reply is 250 and carol's a 451 (her
// Maildir is not writable by the mail user, so Dovecot cannot save it:
// "451 4.2.0 <carol@popspool.test> Internal error occurred. ..."). The retry, once carol's Maildir is
// fixed, goes to carol alone: alice does not get a second copy, and
// ghost's DSN is sent once.
func TestLMTPRetryOnlyTheDeferredRecipient(t *testing.T) {
	d := dovecot.StartWith(t, lmtpUsers, dovecot.Options{LMTP: true})
	q := lmtpQueue(t, d, 1)
	now := time.Now()
	q.nowFunc = func() time.Time { return now }
	if err := os.Chown(d.Maildir("carol"), 0, 0); err != nil {
		t.Fatal(err)
	}
	msg := []byte("From: sender@example.net\r\nSubject: three recipients\r\n\r\nhello\r\n")
	id := putMsg(t, q, "sender@example.net", msg, lmtpAddr("alice"), lmtpAddr("carol"), lmtpAddr("ghost"))
	runQueue(t, q)

	env, _ := read(t, q, spool.Deferred, id)
	if strings.Join(env.Receivers, ",") != lmtpAddr("carol") || !regexp.MustCompile(`^carol@popspool\.test: 4\d\d `).MatchString(env.LastError) {
		t.Fatalf("deferred envelope: receivers %v, last error %q", env.Receivers, env.LastError)
	}
	t.Logf("Dovecot's answer for carol: %s", env.LastError)
	checkOnce(t, d, "alice", msg)
	if n := d.Count(t, "carol"); n != 0 {
		t.Fatalf("carol has %d messages before the retry", n)
	}
	checkDSN(t, d, lmtpAddr("ghost"))

	if err := os.Chown(d.Maildir("carol"), d.UID, d.GID); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute) // past the first retry interval
	runQueue(t, q)
	checkOnce(t, d, "alice", msg)
	checkOnce(t, d, "carol", msg)
	if n := d.Count(t, "postmaster"); n != 1 {
		t.Fatalf("postmaster has %d messages, want ghost's one DSN", n)
	}
	if !q.Ledger.Delivered(id) || !folderEmpty(q, spool.Pickup, spool.Deferred, spool.Badmail) {
		t.Fatal("not recorded as delivered, or spool folders not empty")
	}
}

// TestLMTPTwoMessagesOneConnection: with one connection, two messages go
// over the same LMTP session (go-smtp before v0.25.1 hung on the second
// message's LMTP replies), and the session ends with QUIT.
func TestLMTPTwoMessagesOneConnection(t *testing.T) {
	d := dovecot.StartWith(t, lmtpUsers, dovecot.Options{LMTP: true})
	q := lmtpQueue(t, d, 1)
	first := []byte("From: sender@example.net\r\nSubject: first\r\n\r\none\r\n")
	second := []byte("From: sender@example.net\r\nSubject: second\r\n\r\ntwo\r\n")
	putMsg(t, q, "sender@example.net", first, lmtpAddr("alice"), lmtpAddr("bob"))
	putMsg(t, q, "sender@example.net", second, lmtpAddr("alice"))
	runQueue(t, q) // ends with Idle: QUIT

	for _, u := range []string{"alice", "bob"} {
		want := [][]byte{wire(first)}
		if u == "alice" {
			want = append(want, wire(second))
		}
		got := d.Messages(t, u)
		var bodies []string
		for _, m := range got {
			bodies = append(bodies, string(dovecot.Body(m)))
		}
		if len(got) != len(want) || !sameSet(bodies, want) {
			t.Fatalf("%s's Maildir: %q", u, bodies)
		}
	}
	if !folderEmpty(q, spool.Pickup, spool.Deferred, spool.Badmail) {
		t.Fatal("spool folders not empty")
	}
	// Dovecot names each delivery <session id>[:Tn, the n-th
	// transaction][:Rn, the n-th recipient]; one session id for all three
	// is one connection. Its log process writes asynchronously.
	saves := regexp.MustCompile(`lmtp\(\w+\)<\d+><([^:>]+)[^>]*>: Info: .*saved mail to INBOX`)
	log := waitLog(t, d, func(log string) bool {
		return len(saves.FindAllString(log, -1)) == 3 && strings.Contains(log, "Disconnect from 127.0.0.1: Logged out")
	})
	sessions := map[string]bool{}
	for _, m := range saves.FindAllStringSubmatch(log, -1) {
		sessions[m[1]] = true
	}
	if len(sessions) != 1 {
		t.Fatalf("3 deliveries in %d LMTP sessions, want 1; Dovecot's log:\n%s", len(sessions), log)
	}
}

// waitLog returns Dovecot's log once ok says it is complete, or fails
// after 5 s.
func waitLog(t *testing.T, d *dovecot.Dovecot, ok func(string) bool) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		log := d.Log()
		if ok(log) {
			return log
		}
		if time.Now().After(deadline) {
			t.Fatalf("Dovecot's log lacks the expected lines (3 deliveries, a session ended by QUIT):\n%s", log)
		}
	}
}

// checkOnce: user's Maildir holds msg exactly once.
func checkOnce(t *testing.T, d *dovecot.Dovecot, user string, msg []byte) {
	t.Helper()
	n := 0
	for _, m := range d.Messages(t, user) {
		if bytes.Equal(dovecot.Body(m), wire(msg)) {
			n++
		}
	}
	if n != 1 || d.Count(t, user) != 1 {
		t.Fatalf("%s has the message %d times among %d messages, want once", user, n, d.Count(t, user))
	}
}

// checkDSN: the postmaster got one DSN, from the null sender, naming
// rcpt as failed with Dovecot's reply.
func checkDSN(t *testing.T, d *dovecot.Dovecot, rcpt string) {
	t.Helper()
	got := d.Messages(t, "postmaster")
	if len(got) != 1 {
		t.Fatalf("postmaster has %d messages, want one DSN", len(got))
	}
	text := strings.ReplaceAll(string(got[0]), "\r\n", "\n")
	if header(got[0], "Return-Path") != "<>" || !strings.Contains(text, "report-type=delivery-status") ||
		!strings.Contains(text, "Final-Recipient: rfc822; "+rcpt+"\nAction: failed\nStatus: 5.1.1\n") ||
		!strings.Contains(text, "Diagnostic-Code: smtp; 550 5.1.1 <"+rcpt+"> User doesn't exist") {
		t.Fatalf("DSN:\n%s", text)
	}
}

// header returns the first field called name in a stored message.
func header(m []byte, name string) string {
	head, _, _ := bytes.Cut(m, []byte("\n\n"))
	for _, l := range strings.Split(string(head), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func sameSet(got []string, want [][]byte) bool {
	left := map[string]int{}
	for _, w := range want {
		left[string(w)]++
	}
	for _, g := range got {
		if left[g] == 0 {
			return false
		}
		left[g]--
	}
	return true
}
