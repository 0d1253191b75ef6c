// Package smtpsink is an SMTP server for tests that accepts every message
// and records it: the envelope and the bytes exactly as received (dot-
// unstuffed, CRLF kept). A message counts as accepted only when the whole
// DATA arrived, up to the final dot, so a connection cut mid-DATA records
// nothing, and one cut after the final dot, before the reply, records the
// message although the client never learns it (RFC 1047): the one way a
// correct client can deliver twice.
//
// RcptFault lets a test answer RCPT with a temporary failure (4xx), as a
// real server with a full mailbox or a greylist would. StartDSN offers the
// DSN extension and records each RCPT command line as it came over the
// wire, ORCPT and its xtext encoding included. StartTLS offers STARTTLS
// (RFC 3207) with a given certificate, and counts the sessions that used
// it.
package smtpsink

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"

	"github.com/emersion/go-smtp"
)

// Message is one accepted message.
type Message struct {
	From  string
	Rcpts []string
	Data  []byte
}

// Sink is a running SMTP server.
type Sink struct {
	Addr string // "127.0.0.1:port"

	srv *smtp.Server

	mu        sync.Mutex
	rcptFault func(rcpt string) *smtp.SMTPError
	dataFault func() bool
	dropped   int
	msgs      []Message
	sessions  int
	refused   int
	rcptLines []string
	tlsMsgs   int
}

// Start listens on a free loopback port.
func Start() (*Sink, error) { return start(false, nil) }

// StartDSN is Start with the DSN extension (RFC 3461) offered in EHLO and
// every RCPT command line recorded as sent (RcptLines).
func StartDSN() (*Sink, error) { return start(true, nil) }

// StartTLS is Start with STARTTLS offered, the server presenting cfg's
// certificate (spooltest/testcert).
func StartTLS(cfg *tls.Config) (*Sink, error) { return start(false, cfg) }

func start(dsn bool, cfg *tls.Config) (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sink{Addr: ln.Addr().String()}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "sink.test"
	s.srv.MaxLineLength = 0 // no limit: the tests send lines of several KB
	s.srv.MaxRecipients = 0
	s.srv.EnableDSN = dsn
	s.srv.TLSConfig = cfg
	if dsn {
		ln = tapListener{ln, s}
	}
	go s.srv.Serve(ln) // returns when Close closes the listener
	return s, nil
}

// RcptLines returns the RCPT command lines received, without CRLF, in
// order; only a sink from StartDSN records them.
func (s *Sink) RcptLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rcptLines...)
}

// tapListener hands out connections whose client bytes are scanned for
// RCPT command lines.
type tapListener struct {
	net.Listener
	s *Sink
}

func (l tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tapConn{Conn: c, s: l.s}, nil
}

// maxTapLine bounds the part of a line kept: a command is far shorter, a
// DATA line may be megabytes.
const maxTapLine = 1024

type tapConn struct {
	net.Conn
	s    *Sink
	line []byte
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for _, b := range p[:n] {
		if b != '\n' {
			if len(c.line) < maxTapLine {
				c.line = append(c.line, b)
			}
			continue
		}
		c.record(bytes.TrimSuffix(c.line, []byte("\r")))
		c.line = c.line[:0]
	}
	return n, err
}

func (c *tapConn) record(line []byte) {
	if len(line) < 5 || !strings.EqualFold(string(line[:5]), "RCPT ") {
		return
	}
	c.s.mu.Lock()
	c.s.rcptLines = append(c.s.rcptLines, string(line))
	c.s.mu.Unlock()
}

// Close stops listening and closes every connection.
func (s *Sink) Close() error {
	err := s.srv.Close()
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// SetRcptFault installs f, asked at every RCPT; a non-nil reply refuses
// the recipient with it. nil removes the hook.
func (s *Sink) SetRcptFault(f func(rcpt string) *smtp.SMTPError) {
	s.mu.Lock()
	s.rcptFault = f
	s.mu.Unlock()
}

// SetDataFault installs f, asked after each message is accepted (recorded)
// and before the 250 goes out: true closes the connection instead, so the
// client never learns that the message arrived (RFC 1047), even inside
// TLS, where no proxy can find the final dot. nil removes the hook.
func (s *Sink) SetDataFault(f func() bool) {
	s.mu.Lock()
	s.dataFault = f
	s.mu.Unlock()
}

// Dropped returns how many replies SetDataFault's hook dropped.
func (s *Sink) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Messages returns a copy of the list of accepted messages, in order.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Count returns how many messages were accepted.
func (s *Sink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// TLSMessages returns how many accepted messages came over TLS.
func (s *Sink) TLSMessages() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tlsMsgs
}

// Stats returns the number of sessions and of RCPTs refused by the fault.
func (s *Sink) Stats() (sessions, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions, s.refused
}

type backend struct{ s *Sink }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.s.mu.Lock()
	b.s.sessions++
	b.s.mu.Unlock()
	return &session{s: b.s, conn: c}, nil
}

type session struct {
	s     *Sink
	conn  *smtp.Conn
	from  string
	rcpts []string
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	f := ss.s.rcptFault
	ss.s.mu.Unlock()
	if f != nil {
		if e := f(to); e != nil {
			ss.s.mu.Lock()
			ss.s.refused++
			ss.s.mu.Unlock()
			return e
		}
	}
	ss.rcpts = append(ss.rcpts, to)
	return nil
}

// Data records the message once all of it, final dot included, has
// arrived; go-smtp sends the 250 after Data returns.
func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err // cut mid-DATA: nothing accepted
	}
	ss.s.mu.Lock()
	ss.s.msgs = append(ss.s.msgs, Message{From: ss.from, Rcpts: append([]string(nil), ss.rcpts...), Data: b})
	if _, ok := ss.conn.TLSConnectionState(); ok {
		ss.s.tlsMsgs++
	}
	f := ss.s.dataFault
	ss.s.mu.Unlock()
	if f != nil && f() {
		ss.s.mu.Lock()
		ss.s.dropped++
		ss.s.mu.Unlock()
		_ = ss.conn.Conn().Close() // the reply's write fails; nothing else to tell
		return errors.New("smtpsink: reply dropped after the message was accepted")
	}
	return nil
}

func (ss *session) Reset() { ss.from, ss.rcpts = "", nil }

func (ss *session) Logout() error { return nil }
