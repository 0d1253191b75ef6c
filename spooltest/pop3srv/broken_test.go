package pop3srv

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestBroken: Server.Broken fails the RETR of one message as asked (-ERR
// with the session going on, half the message then a cut, lines that
// never end) and serves the others; SetBroken heals it.
func TestBroken(t *testing.T) {
	files := map[string]string{"001.eml": "Subject: one\r\n\r\n" + strings.Repeat("first\r\n", 200), "002.eml": "Subject: two\r\n\r\nsecond\r\n"}
	s, addr := startServer(t, files, func(s *Server) {
		s.Broken = func(file string) Breakage {
			if file == "001.eml" {
				return BreakErr
			}
			return BreakNone
		}
	})
	c := dial(t, addr)
	c.login()
	if got := c.cmd("RETR 1"); got != "-ERR unable to read message file" {
		t.Fatalf("RETR 1 = %q", got)
	}
	c.expect("RETR 2", "+OK")
	if got := string(c.body()); got != files["002.eml"] {
		t.Fatalf("RETR 2 = %q", got)
	}
	c.expect("QUIT", "+OK")

	waitIdle(t, s)
	s.SetBroken(func(string) Breakage { return BreakCut })
	c = dial(t, addr)
	c.login()
	c.expect("RETR 1", "+OK")
	if got, err := c.readBody(); err != io.EOF || len(got) == 0 || len(got) >= len(files["001.eml"]) {
		t.Fatalf("cut RETR: %d octets, err %v; want EOF after about half", len(got), err)
	}

	waitIdle(t, s)
	s.SetBroken(func(string) Breakage { return BreakEndless })
	c = dial(t, addr)
	c.login()
	c.expect("RETR 2", "+OK")
	for i := 0; i < 20; i++ { // lines keep coming, and never the final "."
		line, err := c.line()
		if err != nil || string(line) == ".\r\n" {
			t.Fatalf("endless RETR, line %d: %q %v", i, line, err)
		}
	}

	c.conn.Close() // the client hangs up; the server notices at its next line
	s.SetBroken(nil)
	waitIdle(t, s)
	c = dial(t, addr)
	c.login()
	c.expect("RETR 1", "+OK")
	if got := string(c.body()); got != files["001.eml"] {
		t.Fatalf("healed RETR 1: %d octets", len(got))
	}
}

// waitIdle waits, bounded, until s has no session left.
func waitIdle(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Active > 0 {
		if time.Now().After(deadline) {
			t.Fatal("sessions did not end")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
