package pop3

import (
	"bufio"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"
)

// step is one exchange of a scripted POP3 server: wait for the client line
// c (unless empty), wait delay, write the raw reply s (unless empty), then
// run then (unless nil; returning false ends the script).
type step struct {
	c     string
	s     string
	delay time.Duration
	then  func(*session) bool
}

// session is the server side of one scripted connection.
type session struct {
	conn net.Conn
	br   *bufio.Reader
}

func (s *session) readLine() (string, error) {
	line, err := s.br.ReadString('\n')
	return strings.TrimSuffix(line, "\r\n"), err
}

// fakeServer accepts one connection on 127.0.0.1 and plays a script. A
// client line that differs from the script, or any line sent after the
// script ended, fails the test. Cleanup waits for the script to finish.
type fakeServer struct {
	addr string
	done chan struct{}
}

func serve(t *testing.T, steps ...step) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeServer{addr: ln.Addr().String(), done: make(chan struct{})}
	go fs.run(t, ln, steps)
	t.Cleanup(func() {
		_ = ln.Close()
		select {
		case <-fs.done:
		case <-time.After(15 * time.Second):
			t.Error("fake server did not finish its script")
		}
	})
	return fs
}

func (fs *fakeServer) run(t *testing.T, ln net.Listener, steps []step) {
	defer close(fs.done)
	conn, err := ln.Accept()
	if err != nil {
		return // the client never connected; the test reports why
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	s := &session{conn: conn, br: bufio.NewReader(conn)}
	defer func() { _ = s.conn.Close() }()
	for i, st := range steps {
		if !fs.play(t, i, st, s) {
			return
		}
	}
	for {
		line, err := s.readLine()
		if err != nil {
			return
		}
		t.Errorf("fake server: unexpected client line after the script: %q", line)
	}
}

func (fs *fakeServer) play(t *testing.T, i int, st step, s *session) bool {
	if st.c != "" {
		line, err := s.readLine()
		if err != nil {
			t.Errorf("fake server step %d: want %q, got error %v", i, st.c, err)
			return false
		}
		if line != st.c {
			t.Errorf("fake server step %d: client sent %q, want %q", i, line, st.c)
			return false
		}
	}
	time.Sleep(st.delay)
	if st.s != "" {
		if _, err := s.conn.Write([]byte(st.s)); err != nil {
			return false // the client is gone; the test checks why
		}
	}
	if st.then != nil {
		return st.then(s)
	}
	return true
}

// hangUp closes the connection after the step's reply.
func hangUp(s *session) bool {
	_ = s.conn.Close()
	return false
}

// upgradeTLS runs the server side of a TLS handshake. A failed handshake
// ends the script (the client is expected to have refused the certificate).
func upgradeTLS(cfg *tls.Config) func(*session) bool {
	return func(s *session) bool {
		tc := tls.Server(s.conn, cfg)
		if err := tc.Handshake(); err != nil {
			return false
		}
		s.conn, s.br = tc, bufio.NewReader(tc)
		return true
	}
}

// greet is the usual first step.
var greet = step{s: "+OK POP3 fake ready <1896.697170952@dbc.mtview.ca.us>\r\n"}

// dial connects a Client to fs and closes it when the test ends.
func dial(t *testing.T, fs *fakeServer, o Options) *Client {
	t.Helper()
	c, err := Dial(t.Context(), fs.addr, o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// clearOpts allows plaintext logins against the fake server.
func clearOpts() Options {
	return Options{AllowPlaintext: true, Timeout: 5 * time.Second}
}
