package queue

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"

	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/spool"
)

type sent struct {
	Job
	data []byte
}

// dsns returns the DSNs the target was given: jobs with the null sender
// and a multipart/report.
func (s *scripted) dsns(t *testing.T) []sent {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var l []sent
	for i, j := range s.jobs {
		if j.Sender == "" && bytes.Contains(s.data[i], []byte("report-type=delivery-status")) && !bytes.Contains(s.data[i], []byte("--x--")) {
			l = append(l, sent{j, s.data[i]})
		}
	}
	return l
}

// deliveryStatus returns the message/delivery-status part of a DSN job.
func deliveryStatus(t *testing.T, j sent) string {
	t.Helper()
	e, err := message.Read(bytes.NewReader(j.data))
	if err != nil {
		t.Fatal(err)
	}
	if ct, p, _ := e.Header.ContentType(); ct != "multipart/report" || p["report-type"] != "delivery-status" {
		t.Fatalf("DSN content type %s %v", ct, p)
	}
	mr := e.MultipartReader()
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no message/delivery-status part: %v", err)
		}
		if ct, _, _ := p.Header.ContentType(); ct == "message/delivery-status" {
			b, _ := io.ReadAll(p.Body)
			return string(b)
		}
	}
}

func putEnv(t *testing.T, q *Queue, env envelope.Envelope, msg string) string {
	t.Helper()
	id := spool.NewID()
	var b bytes.Buffer
	env.Write(&b)
	p := filepath.Join(q.S.Dir(spool.Pickup), id+".eml")
	os.WriteFile(p, append(b.Bytes(), msg...), 0o600)
	old := time.Now().Add(-time.Minute)
	os.Chtimes(p, old, old)
	return id
}

func TestPermanentFailureSendsOneDSNToPostmaster(t *testing.T) {
	tg := &scripted{answers: map[string]string{"perm@l": "perm"}}
	q := newQueue(t, tg)
	id := putEnv(t, q, envelope.Envelope{HasSender: true, Sender: "forged@outside.example", Receivers: []string{"perm@l"},
		Originals: map[string]string{"perm@l": "perm@isp.example"}}, body)
	if err := q.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	read(t, q, spool.Badmail, id)
	d := tg.dsns(t)
	if len(d) != 1 || len(d[0].Rcpts) != 1 || d[0].Rcpts[0] != "postmaster@l" {
		t.Fatalf("DSNs %+v", d)
	}
	ds := deliveryStatus(t, d[0])
	for _, want := range []string{"Original-Recipient: rfc822; perm@isp.example", "Final-Recipient: rfc822; perm@l",
		"Action: failed", "Status: 5.1.1", "Diagnostic-Code: smtp; said perm", "Arrival-Date: ", "Last-Attempt-Date: "} {
		if !strings.Contains(ds, want) {
			t.Errorf("no %q in\n%s", want, ds)
		}
	}
	// An operator retries the badmail file: the same failure, no second DSN.
	os.Rename(filepath.Join(q.S.Dir(spool.Badmail), id+".eml"), filepath.Join(q.S.Dir(spool.Pickup), id+".eml"))
	q.Run(context.Background(), true)
	if n := len(tg.dsns(t)); n != 1 {
		t.Fatalf("%d DSNs after a retry, want 1", n)
	}
}

func TestBounceTo(t *testing.T) {
	for _, c := range []struct {
		mode, sender string
		has          bool
		msg          string
		want         string // DSN recipients, "" none
	}{
		{"postmaster", "bob@ext", true, body, "postmaster@l"},
		{"sender", "bob@ext", true, body, "bob@ext"},
		{"both", "bob@ext", true, body, "postmaster@l,bob@ext"},
		{"sender", "", false, body, "postmaster@l"}, // no X-Sender: nobody else to tell
		{"both", "", true, body, ""},                // null sender: a bounce; never bounced
		{"postmaster", "bob@ext", true, "Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=x\r\n\r\n--x--\r\n", ""},
	} {
		tg := &scripted{answers: map[string]string{"perm@l": "perm"}}
		q := newQueue(t, tg)
		q.Cfg.Deliver.BounceTo = c.mode
		id := putEnv(t, q, envelope.Envelope{HasSender: c.has, Sender: c.sender, Receivers: []string{"perm@l"}}, c.msg)
		q.Run(context.Background(), true)
		read(t, q, spool.Badmail, id)
		got := ""
		if d := tg.dsns(t); len(d) == 1 {
			got = strings.Join(d[0].Rcpts, ",")
		} else if len(d) > 1 {
			got = "several"
		}
		if got != c.want {
			t.Errorf("bounce_to %s, sender %q (%v): DSN to %q, want %q", c.mode, c.sender, c.has, got, c.want)
		}
	}
}

// ok, temp and perm recipients: ok is delivered, perm bounced now, temp
// deferred; at expiry temp gets its own DSN with 4.4.7.
func TestMixedOutcomeThenExpiry(t *testing.T) {
	tg := &scripted{answers: map[string]string{"ok@l": "ok", "temp@l": "temp", "perm@l": "perm"}}
	q := newQueue(t, tg)
	now := time.Now()
	q.nowFunc = func() time.Time { return now }
	id := put(t, q, spool.Pickup, "ok@l", "temp@l", "perm@l")
	q.Run(context.Background(), true)
	env, _ := read(t, q, spool.Deferred, id)
	if strings.Join(env.Receivers, ",") != "temp@l" {
		t.Fatalf("deferred for %v", env.Receivers)
	}
	d := tg.dsns(t)
	if len(d) != 1 {
		t.Fatalf("%d DSNs, want 1", len(d))
	}
	if ds := deliveryStatus(t, d[0]); !strings.Contains(ds, "Final-Recipient: rfc822; perm@l") || strings.Contains(ds, "temp@l") || strings.Contains(ds, "ok@l") {
		t.Fatalf("first DSN:\n%s", ds)
	}
	now = now.Add(49 * time.Hour)
	q.Run(context.Background(), true)
	env, _ = read(t, q, spool.Badmail, id)
	if strings.Join(env.Receivers, ",") != "temp@l" || !strings.HasPrefix(env.LastError, "expired") {
		t.Fatalf("badmail %+v", env)
	}
	d = tg.dsns(t)
	if len(d) != 2 {
		t.Fatalf("%d DSNs, want 2", len(d))
	}
	ds := deliveryStatus(t, d[1])
	if !strings.Contains(ds, "Final-Recipient: rfc822; temp@l\r\nAction: failed\r\nStatus: 4.4.7\r\nDiagnostic-Code: smtp; said temp") {
		t.Fatalf("expiry DSN:\n%s", ds)
	}
}

// A crash after the DSN was published, before the original reached
// badmail/: recovery sends the original back to pickup/, the retry meets
// the same refusal and finds the DSN id in the ledger. One DSN.
func TestCrashAfterDSNSendsNoSecond(t *testing.T) {
	tg := &scripted{answers: map[string]string{"perm@l": "perm"}}
	q := newQueue(t, tg)
	id := put(t, q, spool.Pickup, "perm@l")
	path, _, _ := q.S.Claim(spool.Pickup, id+".eml")
	env, _ := envelopeOf(path)
	q.Ledger.Start(id)
	out := []Outcome{{Rcpt: "perm@l", Text: "550 5.1.1 no", Code: 550, Enhanced: "5.1.1"}}
	if err := q.bounce(path, id, env, "550", out, false, false); err != nil {
		t.Fatal(err)
	}
	// crash here: the DSN is in pickup/, the original still claimed.
	if err := q.Recover(); err != nil {
		t.Fatal(err)
	}
	q.Run(context.Background(), true)
	read(t, q, spool.Badmail, id)
	if n := len(tg.dsns(t)); n != 1 {
		t.Fatalf("%d DSNs, want 1", n)
	}
	// And the DSN of a DSN never happens: a refused DSN goes to badmail/.
	tg.answers["postmaster@l"] = "perm"
	put(t, q, spool.Pickup, "perm@l")
	q.Run(context.Background(), true)
	bad, _ := os.ReadDir(q.S.Dir(spool.Badmail))
	if n := len(tg.dsns(t)); n != 2 || len(bad) != 3 {
		t.Fatalf("%d DSNs (want 2), %d in badmail (want 3)", n, len(bad))
	}
}
