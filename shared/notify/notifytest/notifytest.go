// Package notifytest is a stand-in for systemd in tests: it listens on a
// unixgram socket and records what the daemon under test sends there.
package notifytest

import (
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Socket records the datagrams sent to it.
type Socket struct {
	Path string // the value for $NOTIFY_SOCKET
	conn *net.UnixConn
	mu   sync.Mutex
	got  []string
}

// Listen opens a socket in a temporary folder, or an abstract one when
// path starts with "@", and closes it when the test ends. It does not set
// $NOTIFY_SOCKET: the caller does (t.Setenv, or a child's environment).
func Listen(t testing.TB, path string) *Socket {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "notify.sock")
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s := &Socket{Path: path, conn: conn}
	go s.read()
	t.Cleanup(func() { conn.Close() })
	return s
}

func (s *Socket) read() {
	buf := make([]byte, 64<<10)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.got = append(s.got, string(buf[:n]))
		s.mu.Unlock()
	}
}

// Messages returns every datagram received so far.
func (s *Socket) Messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// Wait waits up to timeout for a datagram containing want and returns it.
func (s *Socket) Wait(t testing.TB, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, m := range s.Messages() {
			if strings.Contains(m, want) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q from the daemon within %v; got %q", want, timeout, s.Messages())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
