// Package pop3srv is a small POP3 server (RFC 1939) for tests and the demo. It
// serves one folder of .eml files as one mailbox, sending each file's bytes as
// they are (byte-stuffed, nothing else converted).
//
// The invariant tests rely on: a message file is removed only after the client
// sends QUIT in the TRANSACTION state (RFC 1939 §6, UPDATE); a session that ends
// any other way removes nothing. Fault lets a test drop the connection at named
// points (mid-RETR, before QUIT, between removals) to check what a client does.
//
// Supported: USER/PASS, CAPA (RFC 2449), STLS (RFC 2595 §4), implicit TLS,
// PIPELINING and RESP-CODES (RFC 2449 §6.6, §6.4), the [AUTH] and [SYS/TEMP]
// codes (RFC 3206), [IN-USE] (RFC 2449 §8.1.2), TOP and UIDL (RFC 1939 §7).
package pop3srv

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultTimeout bounds each wait for a client command when Server.Timeout is 0.
const DefaultTimeout = 10 * time.Minute

// Server serves the .eml files in Dir as one POP3 mailbox. Set the fields,
// then call Start; do not change them afterwards.
type Server struct {
	// Dir holds the messages: every *.eml file is one message in wire form.
	Dir string
	// User and Pass are the only credentials accepted by USER/PASS.
	User, Pass string
	// TLSConfig, if set, enables STLS (RFC 2595 §4), or TLS from the first
	// byte when Implicit is set too.
	TLSConfig *tls.Config
	// Implicit starts TLS before the greeting (POP3S); needs TLSConfig.
	Implicit bool
	// NoUIDL makes UIDL answer -ERR and leaves it out of CAPA.
	NoUIDL bool
	// Fault, if set, is asked at each Event; returning true drops the
	// connection there, after flushing the replies already written.
	Fault func(Event) bool
	// Broken, if set, is asked at each RETR how to fail the message in
	// file (its base name); BreakNone serves it as usual. SetBroken
	// changes it while the server runs.
	Broken func(file string) Breakage
	// Timeout bounds each wait for a command and the handling of it;
	// 0 means DefaultTimeout.
	Timeout time.Duration
	// OnSession, if set, is called with +1 when a connection is taken
	// and -1 when the session ends, before its last reply is sent (so a
	// client that waits for the reply to QUIT sees the count already
	// down): several servers can share one count of the sessions open at
	// once.
	OnSession func(delta int)
	// Logf, if set, receives one line per command and per status reply,
	// with the PASS argument masked. Message data is never logged.
	Logf func(format string, args ...any)

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	locked bool
	closed bool
	wg     sync.WaitGroup
	n      counters
}

// Stats counts what the server did since Start.
type Stats struct {
	Sessions  int   // connections accepted
	Logins    int   // successful PASS commands
	Retrs     int   // RETR commands answered +OK (TOP not counted)
	BytesSent int64 // octets written to clients, status lines included
	Deleted   int   // message files removed in the UPDATE state
	Left      int   // *.eml files in Dir now; -1 if Dir cannot be read
	Active    int   // sessions not yet ended (the mailbox lock is free at 0)
}

type counters struct {
	sessions, logins, retrs, deleted atomic.Int64
	bytes                            atomic.Int64
}

// Event is a point in a session where Server.Fault is asked whether to drop
// the connection.
type Event struct {
	Name  string // one of the Ev* constants
	Cmd   string // EvCommand: the command line, PASS argument masked
	Msg   int    // EvRetr, EvDeleted: the message number
	Bytes int64  // EvRetr: octets of message data already written for this reply
}

// Event names.
const (
	EvGreeting = "greeting" // before the greeting
	EvCommand  = "command"  // after a command line is read, before it is handled
	EvRetr     = "retr"     // before each piece of RETR/TOP data (one line, or ≤ 4 KiB of a long one)
	EvDeleted  = "deleted"  // in UPDATE, after each message file is removed
	EvUpdated  = "updated"  // in UPDATE, after all removals, before the +OK to QUIT
)

// Breakage is how Server.Broken fails a RETR.
type Breakage int

// Breakages.
const (
	BreakNone    Breakage = iota
	BreakErr              // -ERR, the session goes on
	BreakCut              // +OK and half the message, then the connection is dropped
	BreakEndless          // +OK and message lines, slowly, that never end
)

// SetBroken replaces the Broken hook while the server runs.
func (s *Server) SetBroken(f func(file string) Breakage) {
	s.mu.Lock()
	s.Broken = f
	s.mu.Unlock()
}

func (s *Server) broken(file string) Breakage {
	s.mu.Lock()
	f := s.Broken
	s.mu.Unlock()
	if f == nil {
		return BreakNone
	}
	return f(file)
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves each connection in
// its own goroutine. It returns the address actually bound.
func (s *Server) Start(addr string) (net.Addr, error) {
	if s.Implicit && s.TLSConfig == nil {
		return nil, errors.New("pop3srv: Implicit needs TLSConfig")
	}
	if _, err := os.Stat(s.Dir); err != nil {
		return nil, fmt.Errorf("pop3srv: maildrop: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pop3srv: listen: %w", err)
	}
	s.mu.Lock()
	s.ln, s.conns, s.closed = ln, map[net.Conn]struct{}{}, false
	s.mu.Unlock()
	s.wg.Add(1)
	go s.acceptLoop(ln)
	return ln.Addr(), nil
}

// Close stops listening, drops every open session (deleting nothing for
// them) and waits until all goroutines have returned.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		_ = c.Close() // the session's read fails and it returns; it reports that itself
	}
	s.mu.Unlock()
	s.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("pop3srv: close: %w", err)
	}
	return nil
}

// Stats returns the counters and the number of messages left in Dir.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	active := len(s.conns)
	s.mu.Unlock()
	return Stats{
		Active:    active,
		Sessions:  int(s.n.sessions.Load()),
		Logins:    int(s.n.logins.Load()),
		Retrs:     int(s.n.retrs.Load()),
		BytesSent: s.n.bytes.Load(),
		Deleted:   int(s.n.deleted.Load()),
		Left:      countMessages(s.Dir),
	}
}

func countMessages(dir string) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".eml") {
			n++
		}
	}
	return n
}

func (s *Server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.logf("accept: %v", err)
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		if !s.track(conn) {
			_ = conn.Close() // raced with Close; nobody is listening for the error
			continue
		}
		s.wg.Add(1)
		go s.handle(conn)
	}
}

func (s *Server) track(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[conn] = struct{}{}
	return true
}

func (s *Server) handle(raw net.Conn) {
	defer s.wg.Done()
	s.n.sessions.Add(1)
	if s.OnSession != nil {
		s.OnSession(+1)
	}
	err := newSession(s, raw).run()
	s.mu.Lock()
	delete(s.conns, raw)
	closing := s.closed
	s.mu.Unlock()
	if err != nil && !(closing && errors.Is(err, net.ErrClosed)) {
		s.logf("session %s: %v", raw.RemoteAddr(), err)
	}
}

// lock takes the mailbox lock; false means another session holds it.
func (s *Server) lock() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locked {
		return false
	}
	s.locked = true
	return true
}

func (s *Server) unlock() {
	s.mu.Lock()
	s.locked = false
	s.mu.Unlock()
}

func (s *Server) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

// SetFault replaces the Fault hook while the server runs.
func (s *Server) SetFault(f func(Event) bool) {
	s.mu.Lock()
	s.Fault = f
	s.mu.Unlock()
}

func (s *Server) fault(ev Event) bool {
	s.mu.Lock()
	f := s.Fault
	s.mu.Unlock()
	return f != nil && f(ev)
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}
