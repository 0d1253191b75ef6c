package pop3srv

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

var (
	errQuit    = errors.New("client quit")
	errDropped = errors.New("dropped by fault hook")
)

// maxLine bounds a command line. RFC 2449 §4 allows 255 octets; the slack
// lets a test send a long bad line and get -ERR rather than a hang-up.
const maxLine = 1024

// session is one connection. drop is nil in the AUTHORIZATION state and
// set in the TRANSACTION state (RFC 1939 §3).
type session struct {
	s      *Server
	raw    net.Conn // TCP connection, closed when the session ends
	conn   net.Conn // raw, or TLS over raw
	r      *bufio.Reader
	w      *bufio.Writer
	secure bool
	user   string // name from USER, waiting for PASS
	drop   *maildrop
}

func newSession(s *Server, raw net.Conn) *session {
	c := &session{s: s, raw: raw}
	conn := raw
	if s.Implicit {
		conn, c.secure = tls.Server(raw, s.TLSConfig), true
	}
	c.setConn(conn)
	return c
}

// setConn starts fresh buffers on conn. After STLS this also discards any
// plaintext the client pipelined behind the command (RFC 2595 §4 forbids
// it; keeping it would let an attacker inject commands into the TLS session).
func (c *session) setConn(conn net.Conn) {
	c.conn = conn
	c.r = bufio.NewReaderSize(conn, maxLine)
	c.w = bufio.NewWriter(countWriter{conn, &c.s.n.bytes})
}

// run serves the session to its end and closes the connection. A nil
// result means the client sent QUIT.
func (c *session) run() error {
	err := c.loop()
	if c.drop != nil {
		c.s.unlock()
	}
	if c.s.OnSession != nil {
		c.s.OnSession(-1)
	}
	if ferr := c.w.Flush(); ferr != nil && err == nil {
		err = fmt.Errorf("flush: %w", ferr)
	}
	if cerr := c.raw.Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = fmt.Errorf("close: %w", cerr)
	}
	if errors.Is(err, errQuit) {
		return nil
	}
	return err
}

func (c *session) loop() error {
	if c.s.fault(Event{Name: EvGreeting}) {
		return errDropped
	}
	_ = c.conn.SetDeadline(time.Now().Add(c.s.timeout())) // a dead conn fails the first flush anyway
	// RFC 1939 §4 greeting; the timestamp is the APOP banner of RFC 1939 §7.
	c.ok("popspool test server ready %s", banner())
	for {
		if err := c.flushIfIdle(); err != nil {
			return err
		}
		line, err := c.readLine()
		if err != nil {
			return err
		}
		c.s.logf("C: %s", maskPass(line))
		if c.s.fault(Event{Name: EvCommand, Cmd: maskPass(line)}) {
			return errDropped
		}
		if err := c.dispatch(line); err != nil {
			return err
		}
	}
}

// flushIfIdle sends the queued replies unless more pipelined commands are
// already buffered (RFC 2449 §6.6): replies go out in order, in batches.
func (c *session) flushIfIdle() error {
	if c.r.Buffered() > 0 {
		return nil
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// readLine reads one command line, CRLF (or a lenient bare LF) removed.
func (c *session) readLine() (string, error) {
	if err := c.conn.SetDeadline(time.Now().Add(c.s.timeout())); err != nil {
		return "", fmt.Errorf("set deadline: %w", err)
	}
	b, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		c.err("command line too long")
		return "", fmt.Errorf("read: command longer than %d octets", maxLine)
	}
	if errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read: connection closed without QUIT: %w", err)
	}
	if err != nil {
		return "", fmt.Errorf("read: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// dispatch runs one command. Keywords are case-insensitive (RFC 1939 §3).
func (c *session) dispatch(line string) error {
	cmd, arg, _ := strings.Cut(line, " ")
	cmd = strings.ToUpper(cmd)
	switch {
	case cmd == "QUIT":
		return c.quit()
	case cmd == "CAPA": // RFC 2449 §5: valid in every state
		c.capa()
		return nil
	case c.drop == nil:
		return c.authorization(cmd, arg)
	default:
		return c.transaction(cmd, arg)
	}
}

// authorization handles the AUTHORIZATION state (RFC 1939 §4).
func (c *session) authorization(cmd, arg string) error {
	switch cmd {
	case "USER": // RFC 1939 §7
		c.user = arg
		c.ok("send PASS")
	case "PASS":
		c.pass(arg)
	case "STLS":
		return c.stls()
	default:
		c.err("unknown command in AUTHORIZATION state: %s", cmd)
	}
	return nil
}

// pass checks credentials, takes the mailbox lock and snapshots the
// maildrop (RFC 1939 §7, PASS). On -ERR the client must start over with USER.
func (c *session) pass(arg string) {
	user := c.user
	c.user = ""
	switch {
	case user == "":
		c.err("send USER first")
	case user != c.s.User || arg != c.s.Pass:
		c.err("[AUTH] invalid credentials") // RFC 3206 §5
	case !c.s.lock():
		c.err("[IN-USE] mailbox locked") // RFC 2449 §8.1.2
	default:
		c.login()
	}
}

func (c *session) login() {
	drop, err := snapshot(c.s.Dir)
	if err != nil {
		c.s.unlock()
		c.s.logf("snapshot: %v", err)
		c.err("[SYS/TEMP] cannot open maildrop") // RFC 3206 §4
		return
	}
	c.drop = drop
	c.s.n.logins.Add(1)
	n, size := drop.stat()
	c.ok("maildrop locked and ready, %d messages (%d octets)", n, size)
}

// stls upgrades to TLS (RFC 2595 §4): allowed once, before login.
func (c *session) stls() error {
	if c.s.TLSConfig == nil || c.secure {
		c.err("STLS not available")
		return nil
	}
	c.ok("begin TLS negotiation")
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("STLS: write: %w", err)
	}
	tconn := tls.Server(c.raw, c.s.TLSConfig)
	if err := tconn.Handshake(); err != nil {
		return fmt.Errorf("STLS: handshake: %w", err)
	}
	c.setConn(tconn)
	c.secure, c.user = true, ""
	return nil
}

// capa lists the capabilities (RFC 2449 §5, §6).
func (c *session) capa() {
	lines := []string{"TOP"}
	if !c.s.NoUIDL {
		lines = append(lines, "UIDL")
	}
	lines = append(lines, "USER", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE")
	if c.s.TLSConfig != nil && !c.secure && c.drop == nil {
		lines = append(lines, "STLS") // RFC 2595 §4: not after TLS or login
	}
	lines = append(lines, "IMPLEMENTATION popspool-pop3srv")
	c.ok("capability list follows")
	c.lines(lines)
}

// quit ends the session; in the TRANSACTION state it first enters the
// UPDATE state and removes the messages marked by DELE (RFC 1939 §6).
func (c *session) quit() error {
	if c.drop == nil {
		c.ok("popspool test server signing off")
		return errQuit
	}
	removed, err := c.drop.update(c.s)
	if errors.Is(err, errDropped) {
		return err
	}
	if c.s.fault(Event{Name: EvUpdated}) {
		return errDropped
	}
	if err != nil {
		c.s.logf("update: %v", err)
		c.err("[SYS/TEMP] some deleted messages not removed")
		return errQuit
	}
	c.ok("popspool test server signing off (%d messages deleted)", removed)
	return errQuit
}

// ok and err queue a status line (RFC 1939 §3); lines queues the rest of a
// multi-line reply, byte-stuffed, with its terminator.
func (c *session) ok(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	if text == "" {
		c.status("+OK")
		return
	}
	c.status("+OK " + text)
}

func (c *session) err(format string, args ...any) {
	c.status("-ERR " + fmt.Sprintf(format, args...))
}

func (c *session) status(line string) {
	c.s.logf("S: %s", line)
	_, _ = c.w.WriteString(line + "\r\n") // bufio errors are sticky; the next Flush reports them
}

func (c *session) lines(lines []string) {
	for _, l := range lines {
		if strings.HasPrefix(l, ".") {
			l = "." + l
		}
		_, _ = c.w.WriteString(l + "\r\n") // sticky, see status
	}
	_, _ = c.w.WriteString(".\r\n") // sticky, see status
}

func maskPass(line string) string {
	if len(line) >= 4 && strings.EqualFold(line[:4], "PASS") {
		return line[:4] + " ****"
	}
	return line
}

var bannerSeq atomic.Int64

// banner is a unique <process-ID.clock@hostname> timestamp (RFC 1939 §7, APOP).
func banner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return fmt.Sprintf("<%d.%d.%d@%s>", os.Getpid(), time.Now().UnixNano(), bannerSeq.Add(1), host)
}

// countWriter adds the octets written to the connection to n.
type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (cw countWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n.Add(int64(n))
	return n, err
}
