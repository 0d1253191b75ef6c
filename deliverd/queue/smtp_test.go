package queue

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"example.org/popspool/deliverd/smtpc"
	"example.org/popspool/shared/spool"
)

// sink is an in-process SMTP server that refuses "temp@l" with 452 and
// records what it accepts.
type sink struct {
	mu       sync.Mutex
	got      []string // "rcpt|body"
	sessions int
}

func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	s.sessions++
	s.mu.Unlock()
	return &sinkSession{s: s}, nil
}

type sinkSession struct {
	s     *sink
	rcpts []string
}

func (ss *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == "temp@l" {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}
func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	for _, rc := range ss.rcpts {
		ss.s.got = append(ss.s.got, rc+"|"+string(b))
	}
	return err
}
func (ss *sinkSession) Reset()        { ss.rcpts = nil }
func (ss *sinkSession) Logout() error { return nil }

func TestSMTPDeliveryReusesConnection(t *testing.T) {
	sk := &sink{}
	srv := smtp.NewServer(sk)
	srv.Domain = "sink"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	target, _ := smtpc.ParseTarget("smtp://" + ln.Addr().String())
	q := newQueue(t, &SMTP{Target: target, Opt: smtpc.Options{StartTLS: "none"}})
	q.Cfg.Deliver.Connections = 1
	put(t, q, spool.Pickup, "a@l")
	put(t, q, spool.Pickup, "b@l")
	id := put(t, q, spool.Pickup, "c@l", "temp@l")
	if err := q.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	q.Target.Close()
	if len(sk.got) != 3 || sk.sessions != 1 {
		t.Fatalf("sink got %d messages in %d sessions", len(sk.got), sk.sessions)
	}
	for _, g := range sk.got {
		if g[len(g)-len(body):] != body {
			t.Fatalf("body changed: %q", g)
		}
	}
	env, _ := read(t, q, spool.Deferred, id)
	if len(env.Receivers) != 1 || env.Receivers[0] != "temp@l" || env.LastError != "temp@l: 452 4.2.2 mailbox full" {
		t.Fatalf("deferred %+v", env)
	}
	if !q.Ledger.Accepted(id, "c@l") {
		t.Fatal("accepted recipient not recorded")
	}
	if left, _ := os.ReadDir(q.S.Dir(spool.Pickup)); len(left) != 0 {
		t.Fatal("pickup not empty")
	}
}
