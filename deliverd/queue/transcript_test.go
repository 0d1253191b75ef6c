package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"example.org/popspool/deliverd/smtpc"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
	"example.org/popspool/spooltest/dovecot"
)

// deliverLogged delivers one message to an in-process SMTP server with
// the daemon's logger at level, and returns the log and its transcript
// lines ("C MAIL FROM:<a@x>").
func deliverLogged(t *testing.T, level string) (string, []string) {
	t.Helper()
	sk := &sink{}
	srv := smtp.NewServer(sk)
	srv.Domain = "sink"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	var out lockedBuffer
	log, err := event.NewLogger(&out, "deliverd", level, "json")
	if err != nil {
		t.Fatal(err)
	}
	target, _ := smtpc.ParseTarget("smtp://" + ln.Addr().String())
	q := newQueue(t, &SMTP{Target: target, Opt: smtpc.Options{StartTLS: "none", Helo: "gw.test"}, Log: log})
	q.Log = log
	put(t, q, spool.Pickup, "a@l")
	if err := q.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	q.Target.Close()
	if len(sk.got) != 1 {
		t.Fatalf("sink got %d messages", len(sk.got))
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out.b.String()), "\n") {
		var f map[string]any
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if f["message"] != "transcript" {
			continue
		}
		if f["level"] != "trace" || f["conn"] != 1.0 || f["target"] != target.String() || f["event"] != nil {
			t.Errorf("transcript line %s: want level trace, conn 1, target %s, no event", l, target)
		}
		lines = append(lines, f["dir"].(string)+" "+f["line"].(string))
	}
	return out.b.String(), lines
}

// TestTranscriptTrace: with log.level = "trace" deliverd logs every
// command and reply of the session, the body only as its size.
func TestTranscriptTrace(t *testing.T) {
	log, lines := deliverLogged(t, "trace")
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"S 220 sink ESMTP Service Ready", "C EHLO gw.test", "S 250-Hello gw.test",
		"C MAIL FROM:<a@x> BODY=8BITMIME SIZE=", "S 250 2.0.0 Roger, accepting mail from <a@x>",
		"C RCPT TO:<a@l>", "S 250 2.0.0 I'll make sure <a@l> gets this",
		"C DATA", "S 354 Go ahead. End your data with <CR><LF>.<CR><LF>",
		fmt.Sprintf("C [message body: %d bytes with the final dot, not traced]", len(body)+len(".")+len(".\r\n")), // ".dot" is stuffed
		"S 250 2.0.0 OK: queued", "C QUIT", "S 221 2.0.0 Bye",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("transcript lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(log, "Subject: s") || strings.Contains(log, ".dot") {
		t.Errorf("the log holds the message body:\n%s", log)
	}
}

// TestTranscriptDebug: at level debug there is no transcript.
func TestTranscriptDebug(t *testing.T) {
	if log, lines := deliverLogged(t, "debug"); len(lines) != 0 || strings.Contains(log, "MAIL FROM") {
		t.Errorf("transcript at level debug:\n%s", log)
	}
}

// TestLMTPTranscript: the transcript of a real Dovecot LMTP session over
// STARTTLS: LHLO before and after the handshake, one reply per recipient
// after the dot (RFC 2033 §4.2), the refusal of an unknown one, the
// commands pipelined, and no message line.
func TestLMTPTranscript(t *testing.T) {
	d := dovecot.StartWith(t, lmtpUsers, dovecot.Options{LMTP: true})
	q := lmtpQueue(t, d, 1)
	var out lockedBuffer
	log, err := event.NewLogger(&out, "deliverd", "trace", "json")
	if err != nil {
		t.Fatal(err)
	}
	q.Target.(*SMTP).Log = log
	put(t, q, spool.Pickup, lmtpAddr("alice"), lmtpAddr("bob"), "ghost@popspool.test")
	runQueue(t, q)
	q.Target.Close()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out.b.String()), "\n") {
		var f map[string]any
		if json.Unmarshal([]byte(l), &f) == nil && f["message"] == "transcript" {
			lines = append(lines, f["dir"].(string)+" "+f["line"].(string))
		}
	}
	got := strings.Join(lines, "\n")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^S 220 .*Dovecot.* ready\.\nC LHLO gw\.popspool\.test\n`),
		regexp.MustCompile(`(?m)^C STARTTLS\nS 220 2\.0\.0 Begin TLS negotiation now\.\nC \[TLS handshake done, TLS 1\.3\]\nC LHLO gw\.popspool\.test\n`),
		// PIPELINING (RFC 2920): MAIL, the RCPTs and DATA go out together,
		// their replies follow in order.
		regexp.MustCompile(`(?m)^C MAIL FROM:.*\nC RCPT TO:<alice@popspool\.test>\nC RCPT TO:<bob@popspool\.test>\nC RCPT TO:<ghost@popspool\.test>\nC DATA\n` +
			`S 250 .*\nS 250 .*\nS 250 .*\nS 550 5\.1\.1 <ghost@popspool\.test> User doesn't exist.*\nS 354 .*\n` +
			`C \[message body: \d+ bytes with the final dot, not traced\]\n` +
			`S 250 2\.0\.0 <alice@popspool\.test> \S+ Saved\nS 250 2\.0\.0 <bob@popspool\.test> \S+ Saved$`),
		regexp.MustCompile(`(?m)^C QUIT\nS 221 `),
	} {
		if !want.MatchString(got) {
			t.Errorf("transcript does not match %s:\n%s", want, got)
		}
	}
	if strings.Contains(out.b.String(), "Subject: s") || strings.Contains(out.b.String(), ".dot") {
		t.Errorf("the log holds the message:\n%s", got)
	}
}
