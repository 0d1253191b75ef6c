package pop3srv

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var three = map[string]string{
	"001.eml": "Subject: one\r\n\r\nfirst\r\n",
	"002.eml": "Subject: two\r\n\r\nsecond\r\n",
	"003.eml": "Subject: three\r\n\r\nthird\r\n",
}

func TestGreetingAndCapa(t *testing.T) {
	_, addr := startServer(t, three, nil)
	c := dial(t, addr)
	caps := c.listing("CAPA")
	for _, want := range []string{"TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES", "IMPLEMENTATION popspool-pop3srv"} {
		if !slices.Contains(caps, want) {
			t.Errorf("CAPA lacks %q: %q", want, caps)
		}
	}
	if slices.Contains(caps, "STLS") {
		t.Errorf("CAPA offers STLS without TLSConfig")
	}
	c.expect("STAT", "-ERR") // RFC 1939 §4: not in AUTHORIZATION
	c.expect("STLS", "-ERR")
	c.expect("QUIT", "+OK")
}

func TestStatListUidl(t *testing.T) {
	files := map[string]string{
		"b.eml":       "x\r\n",
		"a.eml":       "hello\r\n",
		"sp ace.eml":  "no crlf",
		"ignored.txt": "not a message",
		"c.eml.part":  "not a message either",
	}
	_, addr := startServer(t, files, nil)
	c := dial(t, addr)
	c.login()
	// Pipelined: all four commands in one write, replies in order.
	c.send("STAT", "LIST", "UIDL", "LIST 3")
	if got := c.status(); got != "+OK 3 19" {
		t.Errorf("STAT = %q", got)
	}
	c.status()
	if got := strings.Fields(string(c.body())); !slices.Equal(got, []string{"1", "7", "2", "3", "3", "9"}) {
		t.Errorf("LIST = %q (sizes: files, plus CRLF where missing)", got)
	}
	c.status()
	uidl := strings.Split(strings.TrimSpace(string(c.body())), "\r\n")
	if uidl[0] != "1 a" || uidl[1] != "2 b" || !regexp.MustCompile(`^3 [\x21-\x7e]{1,70}$`).MatchString(uidl[2]) {
		t.Errorf("UIDL = %q", uidl)
	}
	if got := c.status(); got != "+OK 3 9" {
		t.Errorf("LIST 3 = %q", got)
	}
	c.expect("LIST 4", "-ERR")
	c.expect("UIDL 0", "-ERR")
	c.expect("NOOP", "+OK")
}

// retrCases are files whose bytes must come back exactly after un-stuffing
// (plus CRLF where the file lacks one at its end).
var retrCases = []string{
	"Subject: dots\r\n\r\n.\r\n..\r\n.hidden\r\n...\r\nend\r\n",
	"Subject: no final newline\r\n\r\nlast line",
	"Subject: bare LF\n\n.\nnot a line start: .x\n.\r\n",
	"",
	".\r\n",
	"Subject: long\r\n\r\n" + strings.Repeat("y", 20000) + "\r\n.after long\r\n",
	"Subject: CR at piece end\r\n\r\n" + strings.Repeat("z", 4096-2-27) + "\r\n.stuffed\r\n",
	"Subject: NUL\r\n\r\na\x00b\xff\r\n",
	"Subject: ends in dot\r\n\r\n.",
}

func TestRetrIsByteExact(t *testing.T) {
	files := map[string]string{}
	for i, body := range retrCases {
		files[fmt.Sprintf("%02d.eml", i)] = body
	}
	s, addr := startServer(t, files, nil)
	c := dial(t, addr)
	c.login()
	var cmds []string
	for i := range retrCases {
		cmds = append(cmds, fmt.Sprintf("LIST %d", i+1), fmt.Sprintf("RETR %d", i+1))
	}
	c.send(cmds...) // pipelined
	for i, file := range retrCases {
		want := file
		if !strings.HasSuffix(want, "\r\n") {
			want += "\r\n"
		}
		if got := c.status(); got != fmt.Sprintf("+OK %d %d", i+1, len(want)) {
			t.Errorf("message %d: LIST = %q, want size %d", i+1, got, len(want))
		}
		c.status()
		if got := string(c.body()); got != want {
			t.Errorf("message %d: RETR = %q\nwant %q", i+1, short(got), short(want))
		}
	}
	// The server counts a RETR once it has written it: the client may
	// have read the last one a moment before.
	st := s.Stats()
	for deadline := time.Now().Add(5 * time.Second); st.Retrs != len(retrCases) && time.Now().Before(deadline); st = s.Stats() {
		time.Sleep(5 * time.Millisecond)
	}
	if st.Retrs != len(retrCases) || st.Logins != 1 || st.BytesSent == 0 {
		t.Errorf("stats = %+v", st)
	}
}

func short(s string) string {
	if len(s) > 200 {
		return s[:100] + "…" + s[len(s)-100:]
	}
	return s
}

func TestTop(t *testing.T) {
	msg := "A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n"
	_, addr := startServer(t, map[string]string{"m.eml": msg, "lf.eml": "A: 1\n\nx\ny\n"}, nil)
	c := dial(t, addr)
	c.login()
	for _, tc := range []struct{ cmd, want string }{
		{"TOP 2 0", "A: 1\r\nB: 2\r\n\r\n"},
		{"TOP 2 2", "A: 1\r\nB: 2\r\n\r\nl1\r\n.l2\r\n"},
		{"TOP 2 99", msg},
		{"TOP 1 1", "A: 1\n\nx\n\r\n"},
	} {
		c.expect(tc.cmd, "+OK")
		if got := string(c.body()); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.cmd, got, tc.want)
		}
	}
	c.expect("TOP 1", "-ERR")
	c.expect("TOP 9 1", "-ERR")
}

func TestDeleQuitRemovesFiles(t *testing.T) {
	s, addr := startServer(t, three, nil)
	c := dial(t, addr)
	c.login()
	c.expect("DELE 1", "+OK")
	c.expect("DELE 3", "+OK")
	c.expect("DELE 3", "-ERR")
	c.expect("RETR 1", "-ERR")
	c.expect("STAT", "+OK 1 ")
	if !exists(t, s, "001.eml") {
		t.Fatal("DELE removed the file before QUIT")
	}
	c.expect("QUIT", "+OK")
	if exists(t, s, "001.eml") || !exists(t, s, "002.eml") || exists(t, s, "003.eml") {
		t.Error("QUIT did not remove exactly messages 1 and 3")
	}
	if st := s.Stats(); st.Deleted != 2 || st.Left != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRsetUnmarks(t *testing.T) {
	s, addr := startServer(t, three, nil)
	c := dial(t, addr)
	c.login()
	c.expect("DELE 2", "+OK")
	c.expect("RSET", "+OK")
	c.expect("QUIT", "+OK")
	if st := s.Stats(); st.Deleted != 0 || st.Left != 3 {
		t.Errorf("stats = %+v", st)
	}
}

func TestDroppedConnectionDeletesNothing(t *testing.T) {
	s, addr := startServer(t, three, nil)
	c := dial(t, addr)
	c.login()
	c.expect("DELE 1", "+OK")
	c.expect("DELE 2", "+OK")
	c.conn.Close()
	c2 := dialLoggedIn(t, addr) // succeeds once the first session has let go
	c2.expect("STAT", "+OK 3 ")
	if st := s.Stats(); st.Deleted != 0 || st.Left != 3 {
		t.Errorf("stats = %+v", st)
	}
}

// dialLoggedIn logs in, retrying while the mailbox is still locked.
func dialLoggedIn(t *testing.T, addr net.Addr) *client {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dial(t, addr)
		c.expect("USER alice", "+OK")
		got := c.cmd("PASS secret")
		if strings.HasPrefix(got, "+OK") {
			return c
		}
		if !strings.HasPrefix(got, "-ERR [IN-USE]") || time.Now().After(deadline) {
			t.Fatalf("PASS = %q", got)
		}
		c.conn.Close()
		time.Sleep(20 * time.Millisecond)
	}
}

func TestInUse(t *testing.T) {
	_, addr := startServer(t, three, nil)
	a := dial(t, addr)
	a.login()
	b := dial(t, addr)
	b.expect("USER alice", "+OK")
	if got := b.cmd("PASS secret"); got != "-ERR [IN-USE] mailbox locked" {
		t.Fatalf("second login = %q", got)
	}
	a.expect("QUIT", "+OK")
	b.login()
}

func TestWrongPassword(t *testing.T) {
	_, addr := startServer(t, three, nil)
	c := dial(t, addr)
	c.expect("USER alice", "+OK")
	if got := c.cmd("PASS wrong"); got != "-ERR [AUTH] invalid credentials" {
		t.Fatalf("PASS wrong = %q", got)
	}
	c.expect("PASS secret", "-ERR") // RFC 1939 §7: USER again first
	c.expect("USER bob", "+OK")
	c.expect("PASS secret", "-ERR [AUTH]")
	c.login()
	c.expect("STAT", "+OK 3 ")
}

func TestNoUIDL(t *testing.T) {
	_, addr := startServer(t, three, func(s *Server) { s.NoUIDL = true })
	c := dial(t, addr)
	if slices.Contains(c.listing("CAPA"), "UIDL") {
		t.Error("CAPA lists UIDL")
	}
	c.login()
	c.expect("UIDL", "-ERR")
	c.expect("UIDL 1", "-ERR")
}

func TestSTLS(t *testing.T) {
	srvConf, cliConf := selfSigned(t)
	_, addr := startServer(t, three, func(s *Server) { s.TLSConfig = srvConf })
	c := dial(t, addr)
	if !slices.Contains(c.listing("CAPA"), "STLS") {
		t.Fatal("CAPA does not offer STLS")
	}
	c.expect("STLS", "+OK")
	tc := tls.Client(c.conn, cliConf)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.use(tc)
	if slices.Contains(c.listing("CAPA"), "STLS") {
		t.Error("CAPA offers STLS again under TLS")
	}
	c.expect("STLS", "-ERR")
	c.login()
	c.expect("RETR 2", "+OK")
	if got := string(c.body()); got != three["002.eml"] {
		t.Errorf("RETR over TLS = %q", got)
	}
	c.expect("QUIT", "+OK")
}

func TestImplicitTLS(t *testing.T) {
	srvConf, cliConf := selfSigned(t)
	_, addr := startServer(t, three, func(s *Server) { s.TLSConfig, s.Implicit = srvConf, true })
	conn, err := tls.Dial("tcp", addr.String(), cliConf)
	if err != nil {
		t.Fatalf("dial TLS: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t}
	c.use(conn)
	c.status()
	if slices.Contains(c.listing("CAPA"), "STLS") {
		t.Error("CAPA offers STLS under implicit TLS")
	}
	c.login()
	c.expect("STAT", "+OK 3 ")
}

func TestFaultDropMidRetr(t *testing.T) {
	big := "Subject: big\r\n\r\n" + strings.Repeat("0123456789\r\n", 1000)
	s, addr := startServer(t, map[string]string{"big.eml": big}, func(s *Server) {
		s.Fault = func(ev Event) bool { return ev.Name == EvRetr && ev.Bytes >= 5000 }
	})
	c := dial(t, addr)
	c.login()
	c.expect("DELE 1", "+OK")
	c.expect("RSET", "+OK")
	c.expect("RETR 1", "+OK")
	got, err := c.readBody()
	if err != io.EOF || len(got) < 5000 || len(got) >= len(big) {
		t.Fatalf("partial RETR: %d octets, err %v; want EOF after ~5000", len(got), err)
	}
	if st := s.Stats(); st.Left != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestFaultDropBeforeQuit(t *testing.T) {
	s, addr := startServer(t, three, func(s *Server) {
		s.Fault = func(ev Event) bool { return ev.Name == EvCommand && ev.Cmd == "QUIT" }
	})
	c := dial(t, addr)
	c.login()
	c.expect("DELE 1", "+OK")
	c.send("QUIT")
	if b, err := c.line(); err != io.EOF {
		t.Fatalf("QUIT answered %q, %v; want a hang-up", b, err)
	}
	if !exists(t, s, "001.eml") {
		t.Error("message removed although QUIT was never handled")
	}
}

func TestFaultDropDuringUpdate(t *testing.T) {
	s, addr := startServer(t, three, func(s *Server) {
		s.Fault = func(ev Event) bool { return ev.Name == EvDeleted && ev.Msg == 1 }
	})
	c := dial(t, addr)
	c.login()
	c.expect("DELE 1", "+OK")
	c.expect("DELE 2", "+OK")
	c.send("QUIT")
	if b, err := c.line(); err != io.EOF {
		t.Fatalf("QUIT answered %q, %v; want a hang-up", b, err)
	}
	if exists(t, s, "001.eml") || !exists(t, s, "002.eml") {
		t.Error("want message 1 removed and message 2 kept")
	}
}

func TestIdleTimeout(t *testing.T) {
	_, addr := startServer(t, three, func(s *Server) { s.Timeout = 100 * time.Millisecond })
	c := dial(t, addr)
	if b, err := c.line(); err != io.EOF {
		t.Fatalf("idle session: read %q, %v; want EOF", b, err)
	}
}

func TestPassIsMaskedForFaultAndLog(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	_, addr := startServer(t, three, func(s *Server) {
		s.Fault = func(ev Event) bool {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, ev.Cmd)
			return false
		}
	})
	c := dial(t, addr)
	c.login()
	c.expect("QUIT", "+OK")
	mu.Lock()
	defer mu.Unlock()
	if slices.ContainsFunc(seen, func(s string) bool { return strings.Contains(s, "secret") }) {
		t.Errorf("password visible to hooks: %q", seen)
	}
}

// TestWireStuffing checks the raw octets, not just the round trip.
func TestWireStuffing(t *testing.T) {
	files := map[string]string{"1.eml": ".\r\n", "2.eml": "a\n.b\r\n.", "3.eml": ""}
	_, addr := startServer(t, files, nil)
	c := dial(t, addr)
	c.login()
	for i, want := range []string{"..\r\n.\r\n", "a\n.b\r\n..\r\n.\r\n", "\r\n.\r\n"} {
		c.expect(fmt.Sprintf("RETR %d", i+1), "+OK")
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c.r, got); err != nil || string(got) != want {
			t.Errorf("RETR %d on the wire = %q, %v; want %q", i+1, got, err, want)
		}
	}
}

// TestOnSessionCounts: OnSession sees +1 per connection taken and -1 by
// the time the client has the reply to QUIT, so a shared count is back
// to zero as soon as the clients have quit.
func TestOnSessionCounts(t *testing.T) {
	var mu sync.Mutex
	open, peak := 0, 0
	_, addr := startServer(t, three, func(s *Server) {
		s.OnSession = func(d int) {
			mu.Lock()
			open += d
			peak = max(peak, open)
			mu.Unlock()
		}
	})
	a, b := dial(t, addr), dial(t, addr)
	a.listing("CAPA")
	b.listing("CAPA")
	mu.Lock()
	if open != 2 {
		t.Errorf("two sessions greeted: %d open", open)
	}
	mu.Unlock()
	a.expect("QUIT", "+OK")
	b.expect("QUIT", "+OK")
	mu.Lock()
	defer mu.Unlock()
	if open != 0 || peak != 2 {
		t.Fatalf("after two sessions quit: %d open, peak %d; want 0 and 2", open, peak)
	}
}
