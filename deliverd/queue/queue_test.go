package queue

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/deliverd/ledger"
	"example.org/popspool/deliverd/maildir"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/spool"
)

// scripted answers each recipient by a table: "ok", "temp", "perm", or
// the whole message with an error.
type scripted struct {
	mu      sync.Mutex
	answers map[string]string
	err     error
	calls   int
	jobs    []Job
	data    [][]byte // the message of each job, read during Send
	ids     map[string]int
}

func (s *scripted) Send(_ context.Context, j Job) ([]Outcome, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.jobs = append(s.jobs, j)
	if s.ids == nil {
		s.ids = map[string]int{}
	}
	s.ids[j.ID]++
	r, _ := j.Msg.Open()
	b, _ := io.ReadAll(r)
	r.Close()
	s.data = append(s.data, b)
	if s.err != nil {
		return nil, s.err
	}
	var out []Outcome
	for _, r := range j.Rcpts {
		a := s.answers[r]
		if a == "" {
			a = "ok"
		}
		o := Outcome{Rcpt: r, OK: a == "ok", Temp: a == "temp", Text: "said " + a}
		switch a {
		case "temp":
			o.Code, o.Enhanced = 451, "4.3.0"
		case "perm":
			o.Code, o.Enhanced = 550, "5.1.1"
		}
		out = append(out, o)
	}
	return out, nil
}
func (s *scripted) Idle()        {}
func (s *scripted) Close() error { return nil }

func newQueue(t testing.TB, target Target) *Queue {
	t.Helper()
	s, err := spool.Open(t.TempDir(), "deliverd", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(s.Dir(spool.State), "deliverd.ledger"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); s.Close() })
	cfg := &config.Config{Rescan: config.Duration(time.Second), Deliver: config.Deliver{
		Retry: []config.Duration{config.Duration(time.Minute), config.Duration(time.Hour)}, Expire: config.Duration(48 * time.Hour),
		Postmaster: "postmaster@l", BounceTo: "postmaster", Connections: 4}}
	return &Queue{S: s, Cfg: cfg, Log: zerolog.Nop(), Ledger: l, Target: target}
}

const body = "From: a@x\r\nSubject: s\r\n\r\nbody\r\n.dot\r\n"

func put(t testing.TB, q *Queue, folder string, rcpts ...string) string {
	t.Helper()
	id := spool.NewID()
	var b strings.Builder
	envelope.Envelope{Sender: "a@x", HasSender: true, Receivers: rcpts}.Write(&b)
	p := filepath.Join(q.S.Dir(folder), id+".eml")
	os.WriteFile(p, []byte(b.String()+body), 0o600)
	old := time.Now().Add(-time.Minute)
	os.Chtimes(p, old, old)
	return id
}

func read(t *testing.T, q *Queue, folder, id string) (envelope.Envelope, string) {
	t.Helper()
	p := filepath.Join(q.S.Dir(folder), id+".eml")
	env, msg, err := readEnvelope(p)
	if err != nil {
		t.Fatalf("%s/%s: %v", folder, id, err)
	}
	defer msg.close()
	r, _ := msg.Open()
	defer r.Close()
	b := make([]byte, msg.Size)
	r.Read(b)
	return env, string(b)
}

func TestMaildirDeliveryOnce(t *testing.T) {
	root := t.TempDir()
	q := newQueue(t, &Maildirs{Pattern: root + "/{user}"})
	id := put(t, q, spool.Pickup, "alice@l", "bob@l")
	if err := q.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		b, err := os.ReadFile(filepath.Join(root, u, "new", maildir.Name(id)))
		if err != nil || !strings.HasSuffix(string(b), body) || !strings.HasPrefix(string(b), "Return-Path: <a@x>\r\nDelivered-To: "+u+"@l\r\n") {
			t.Fatalf("%s: %q %v", u, b, err)
		}
	}
	if left, _ := os.ReadDir(q.S.Dir(spool.Pickup)); len(left) != 0 {
		t.Fatalf("pickup not empty")
	}
	// A copy resurrected by a crash is not delivered again.
	os.WriteFile(filepath.Join(q.S.Dir(spool.Pickup), id+".eml"), []byte("X-Receiver: <alice@l>\r\n"+body), 0o600)
	os.Chtimes(filepath.Join(q.S.Dir(spool.Pickup), id+".eml"), time.Unix(0, 0), time.Unix(0, 0))
	q.Run(context.Background(), true)
	if left, _ := os.ReadDir(q.S.Dir(spool.Pickup)); len(left) != 0 {
		t.Fatalf("copy not removed")
	}
}

func TestPartialFailureDefersOnlyFailedRecipients(t *testing.T) {
	tg := &scripted{answers: map[string]string{"ok@l": "ok", "temp@l": "temp", "perm@l": "perm"}}
	q := newQueue(t, tg)
	now := time.Now()
	q.nowFunc = func() time.Time { return now }
	id := put(t, q, spool.Pickup, "ok@l", "temp@l", "perm@l")
	q.Run(context.Background(), true)
	env, msg := read(t, q, spool.Deferred, id)
	if msg != body || len(env.Receivers) != 1 || env.Receivers[0] != "temp@l" || env.Attempts != 1 {
		t.Fatalf("deferred %+v %q", env, msg)
	}
	if !env.NextAttempt.After(now.Add(59*time.Second)) || env.LastError == "" {
		t.Fatalf("next attempt %v, error %q", env.NextAttempt, env.LastError)
	}
	// Not due yet: nothing happens. Due: retried, and now it works.
	q.Run(context.Background(), true)
	if tg.ids[id] != 1 {
		t.Fatalf("retried before due")
	}
	now = now.Add(2 * time.Minute)
	tg.answers["temp@l"] = "ok"
	q.Run(context.Background(), true)
	if tg.ids[id] != 2 {
		t.Fatalf("not retried when due")
	}
	if left, _ := os.ReadDir(q.S.Dir(spool.Deferred)); len(left) != 0 {
		t.Fatalf("deferred not emptied")
	}
	if !q.Ledger.Delivered(id) {
		t.Fatal("not recorded as delivered")
	}
}

func TestPermanentGoesToBadmailAndExpiry(t *testing.T) {
	tg := &scripted{answers: map[string]string{"perm@l": "perm", "temp@l": "temp"}}
	q := newQueue(t, tg)
	id := put(t, q, spool.Pickup, "perm@l")
	q.Run(context.Background(), true)
	if env, msg := read(t, q, spool.Badmail, id); msg != body || env.LastError != "perm@l: said perm" {
		t.Fatalf("badmail %+v %q", env, msg)
	}
	q.nowFunc = func() time.Time { return time.Now().Add(49 * time.Hour) }
	id = put(t, q, spool.Pickup, "temp@l")
	q.Run(context.Background(), true)
	if env, _ := read(t, q, spool.Badmail, id); env.Receivers[0] != "temp@l" {
		t.Fatalf("expired message not in badmail: %+v", env)
	}
}

func TestWindowCountedAndRetried(t *testing.T) {
	tg := &scripted{err: &NetError{AfterDot: true, Err: errors.New("EOF")}}
	q := newQueue(t, tg)
	id := put(t, q, spool.Pickup, "a@l")
	q.Run(context.Background(), true)
	if q.Ledger.Windows() != 1 {
		t.Fatalf("windows %d", q.Ledger.Windows())
	}
	if env, _ := read(t, q, spool.Deferred, id); !strings.Contains(env.LastError, "after the final dot") {
		t.Fatalf("%+v", env)
	}
}

func TestRecoverAfterCrashMidDelivery(t *testing.T) {
	root := t.TempDir()
	q := newQueue(t, &Maildirs{Pattern: root + "/{user}"})
	id := put(t, q, spool.Pickup, "alice@l")
	path, _, _ := q.S.Claim(spool.Pickup, id+".eml")
	// The crash came after the Maildir link, before the D record.
	_, msg, _ := readEnvelope(path)
	r, _ := msg.Open()
	maildir.Deliver(filepath.Join(root, "alice"), id, "", r, false, true)
	r.Close()
	msg.close()
	q.Ledger.Start(id)
	if err := q.Recover(); err != nil {
		t.Fatal(err)
	}
	q.Run(context.Background(), true)
	n, _ := os.ReadDir(filepath.Join(root, "alice", "new"))
	if len(n) != 1 || !q.Ledger.Delivered(id) || q.Ledger.Windows() != 1 {
		t.Fatalf("maildir holds %d, delivered %v, windows %d", len(n), q.Ledger.Delivered(id), q.Ledger.Windows())
	}
}

// Issue 12: running as a daemon, deliverd out of work makes the D records
// durable on its own within syncLinger (no next claim to carry them).
func TestIdleMakesDoneDurable(t *testing.T) {
	q := newQueue(t, &Maildirs{Pattern: t.TempDir() + "/{user}"})
	id := put(t, q, spool.Pickup, "alice@l")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx, false) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if q.Ledger.Delivered(id) && !q.Ledger.Unsynced() {
			return
		}
	}
	t.Fatalf("the delivered message's D record was not made durable while idle: delivered %v", q.Ledger.Delivered(id))
}
