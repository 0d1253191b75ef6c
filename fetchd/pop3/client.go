// Package pop3 is a POP3 client (RFC 1939, RFC 2449, RFC 2595, RFC 5034)
// that treats the server as hostile: every read and write has a deadline,
// every reply line is length-capped and checked, and messages are streamed
// byte for byte to an io.Writer, never held in memory.
//
// It is a library: it does not log. Errors are wrapped with the command that
// failed; an -ERR reply is an *Error, a malformed reply wraps ErrProtocol.
// After an -ERR reply the session is still usable; after any other error
// from the network or the protocol it is not, and every later command fails
// with that first error.
//
// A Client is not safe for concurrent use.
package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"example.org/popspool/shared/liveness"
)

// TLSMode says how the connection is protected.
type TLSMode int

const (
	TLSNone     TLSMode = iota // clear text; credentials need Options.AllowPlaintext
	TLSImplicit                // TLS from the first byte (port 995, RFC 8314)
	TLSStartTLS                // clear text greeting, then STLS (RFC 2595 §4); fails rather than continue in clear
)

// DefaultTimeout is used when Options.Timeout is zero.
const DefaultTimeout = 60 * time.Second

// Options configures a Client.
type Options struct {
	TLS TLSMode
	// TLSConfig is cloned. If its ServerName is empty, Dial sets it to the
	// host part of addr. Verification is on unless InsecureSkipVerify is set.
	TLSConfig *tls.Config
	// Timeout bounds each command: it is the read and write deadline set when
	// the command is sent. While a message body is arriving the read deadline
	// is moved forward as pieces arrive, so Timeout bounds a stall (one of
	// Timeout to Timeout plus a sixteenth, at most plus a second, breaks the
	// session), not the transfer of a large message. Default DefaultTimeout. Cancel the context
	// given to Dial to bound a whole session.
	Timeout time.Duration
	// AllowPlaintext permits USER/PASS, APOP and AUTH on a connection
	// without TLS. Off by default.
	AllowPlaintext bool
	// NoPipelining sends commands one at a time even when CAPA lists
	// PIPELINING (RFC 2449 §6.6): for servers that announce it and get
	// it wrong, and to measure what it brings.
	NoPipelining bool
	// MaxListing bounds the entries List and UIDL keep; past it they read
	// the listing to its end and return the first MaxListing entries with
	// ErrTruncated. Default DefaultMaxListing.
	MaxListing int
	// Trace, if set, gets every protocol line without its CRLF: dir is 'C' for
	// lines sent, 'S' for lines received. Passwords, APOP digests and SASL
	// payloads are masked ("PASS ****"), and so is a server's echo of them
	// during the login. Message bodies (RETR, TOP) are never traced: a note
	// in brackets, "[RETR 1 body: 2300 octets, not traced]", stands for each.
	// Of a listing (CAPA, LIST, UIDL) the first TraceListingLines lines are
	// traced and a note counts the rest; a note also marks the end of a TLS
	// handshake. Control characters are replaced by '?'. When Trace is nil
	// no line is built for it.
	Trace func(dir byte, line string)
}

// Client is one POP3 session.
type Client struct {
	conn     net.Conn // the TLS conn once TLS is up
	r        *bufio.Reader
	w        *bufio.Writer
	opt      Options
	ctx      context.Context
	stop     func() bool // unregisters the context.AfterFunc that closes conn
	greeting string
	isTLS    bool
	caps     *Caps    // from the last CAPA in the current state; nil if unknown
	secrets  []string // what a login in progress sends, to scrub from server text
	err      error    // sticky: the session is lost
	closed   bool
	beat     *liveness.Loop // the work loop of ctx, marked at each command and piece read
	readBy   time.Time      // the read deadline last set
	ahead    []int          // RETRs sent ahead (Prefetch), replies not yet read, in order
}

// bufSize is the read buffer; it is also the piece size in which very long
// message lines are copied.
const bufSize = 32 << 10

// Dial connects to addr ("host:port"), reads the greeting and, for
// TLSStartTLS, upgrades with STLS. Cancelling ctx at any time closes the
// connection, which makes the command in progress fail.
func Dial(ctx context.Context, addr string, o Options) (*Client, error) {
	o = o.withDefaults()
	if o.TLS != TLSNone && o.TLSConfig.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("pop3 dial %s: %w", addr, err)
		}
		o.TLSConfig.ServerName = host
	}
	d := net.Dialer{Timeout: o.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pop3 dial %s: %w", addr, err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		if err := tc.SetNoDelay(true); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("pop3 dial %s: set TCP_NODELAY: %w", addr, err)
		}
	}
	return NewClient(ctx, conn, o)
}

// NewClient runs a session over an established connection, as Dial does
// after connecting. For TLSImplicit and TLSStartTLS, o.TLSConfig must name
// the server. A *tls.Conn whose handshake is complete, given with
// TLSNone, counts as TLS (callers that run the handshake themselves, to
// report on it). The Client owns conn and closes it on failure.
func NewClient(ctx context.Context, conn net.Conn, o Options) (*Client, error) {
	if o.TLS < TLSNone || o.TLS > TLSStartTLS {
		_ = conn.Close()
		return nil, fmt.Errorf("pop3: unknown TLS mode %d", o.TLS)
	}
	o = o.withDefaults()
	c := &Client{
		conn: conn,
		r:    bufio.NewReaderSize(conn, bufSize),
		w:    bufio.NewWriter(conn),
		opt:  o,
		ctx:  ctx,
		stop: context.AfterFunc(ctx, func() { _ = conn.Close() }),
		beat: liveness.From(ctx),
	}
	if tc, ok := conn.(*tls.Conn); ok && o.TLS == TLSNone && tc.ConnectionState().HandshakeComplete {
		c.isTLS = true
	}
	if err := c.start(); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.TLSConfig == nil {
		o.TLSConfig = &tls.Config{}
	} else {
		o.TLSConfig = o.TLSConfig.Clone()
	}
	return o
}

// start brings the session to the AUTHORIZATION state (RFC 1939 §4).
func (c *Client) start() error {
	if c.opt.TLS == TLSImplicit {
		if err := c.handshake("TLS"); err != nil {
			return err
		}
	}
	if err := c.setDeadline(); err != nil {
		return c.fatal("greeting", err)
	}
	text, err := c.readStatus("greeting")
	if err != nil {
		return err
	}
	c.greeting = text
	if c.opt.TLS == TLSStartTLS {
		return c.startTLS()
	}
	return nil
}

// Greeting returns the text of the server's +OK greeting.
func (c *Client) Greeting() string { return c.greeting }

// TLS reports whether the session is protected by TLS.
func (c *Client) TLS() bool { return c.isTLS }

// Err returns the error that made the session unusable, or nil while
// commands may still be sent (after an -ERR reply, or a listing line that
// was refused but read to its end, the session is still in sync).
func (c *Client) Err() error { return c.err }

// Close closes the connection without QUIT, so messages marked with DELE
// stay in the maildrop (RFC 1939 §6: only QUIT enters the UPDATE state).
// It may be called more than once.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if !c.stop() {
		return nil // the context already closed the connection
	}
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("pop3 close: %w", err)
	}
	return nil
}

// cmd sends line and reads its status line. line names the command in errors
// and traces, so it must not hold secrets (see cmdSecret).
func (c *Client) cmd(line string) (string, error) {
	return c.cmdSecret(line, line, line)
}

// cmdSecret sends line, tracing shown instead, and reads the status line;
// name is used in errors.
func (c *Client) cmdSecret(line, name, shown string) (string, error) {
	if err := c.usable(name); err != nil {
		return "", err
	}
	if err := c.setDeadline(); err != nil {
		return "", c.fatal(name, err)
	}
	if err := c.send(line, name, shown); err != nil {
		return "", err
	}
	if err := c.flush(name); err != nil {
		return "", err
	}
	return c.readStatus(name)
}

// usable says whether command name may be sent now: the session is
// alive and no reply to a RETR sent ahead is still to be read.
func (c *Client) usable(name string) error {
	if err := c.alive(name); err != nil {
		return err
	}
	return c.inOrder(name)
}

// alive says whether the session can still carry commands.
func (c *Client) alive(name string) error {
	if c.closed {
		return fmt.Errorf("pop3 %s: %w", name, ErrClosed)
	}
	if c.err != nil {
		return fmt.Errorf("pop3 %s: session unusable: %w", name, c.err)
	}
	return nil
}

// send buffers one command line (RFC 1939 §3: CRLF-terminated). A line
// containing CR, LF or NUL is refused so that arguments cannot inject
// commands.
func (c *Client) send(line, name, shown string) error {
	if strings.ContainsAny(line, "\r\n\x00") {
		return fmt.Errorf("pop3 %s: argument contains CR, LF or NUL", name)
	}
	c.trace('C', shown)
	if _, err := c.w.WriteString(line + "\r\n"); err != nil {
		return c.fatal(name, fmt.Errorf("write: %w", err))
	}
	return nil
}

func (c *Client) flush(name string) error {
	if err := c.w.Flush(); err != nil {
		return c.fatal(name, fmt.Errorf("write: %w", err))
	}
	return nil
}

// readLine reads one raw line, LF included, of at most maxLine octets.
func (c *Client) readLine(name string) ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxLine {
		return nil, c.fatal(name, fmt.Errorf("%w: line longer than %d octets", ErrProtocol, maxLine))
	}
	if err != nil {
		return nil, c.fatal(name, fmt.Errorf("read: %w", bodyReadErr(err)))
	}
	return line, nil
}

// readStatus reads a status line and returns its text after "+OK ", or an
// *Error for -ERR.
func (c *Client) readStatus(name string) (string, error) {
	line, err := c.readLine(name)
	if err != nil {
		return "", err
	}
	return c.status(name, trimEOL(line))
}

// status interprets a status line read for command name. During a login the
// password is masked in the text and a malformed line is not quoted, in case
// the server echoes the password.
func (c *Client) status(name string, line []byte) (string, error) {
	c.traceLine(line)
	ok, code, text, err := parseStatus(line)
	if err != nil {
		if len(c.secrets) > 0 {
			err = fmt.Errorf("%w: malformed status line (not quoted during login)", ErrProtocol)
		}
		return "", c.fatal(name, err)
	}
	text = c.scrub(text)
	if !ok {
		return "", &Error{Cmd: name, Code: code, Text: text}
	}
	return text, nil
}

// fatal records err as the reason the session is lost and returns it with
// context. If the caller's context is done, its cause is included.
func (c *Client) fatal(name string, err error) error {
	if cerr := context.Cause(c.ctx); cerr != nil {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	err = fmt.Errorf("pop3 %s: %w", name, err)
	if c.err == nil {
		c.err = err
	}
	return err
}

func (c *Client) setDeadline() error {
	c.beat.Busy()
	c.readBy = time.Now().Add(c.opt.Timeout)
	return c.conn.SetDeadline(c.readBy)
}

// extendRead moves the read deadline forward while a message body
// flows. It is called after every window copyDot handles (at most a
// buffer's worth), so it moves the deadline only once it has come within
// Timeout of now, to now plus Timeout plus a slack: a stall still has at
// least Timeout, at most Timeout plus the slack, and a message costs a
// few deadline (timer) changes instead of one a window.
func (c *Client) extendRead() {
	now := time.Now()
	if c.readBy.Sub(now) >= c.opt.Timeout {
		return
	}
	c.beat.Busy()
	c.readBy = now.Add(c.opt.Timeout + deadlineSlack(c.opt.Timeout))
	_ = c.conn.SetReadDeadline(c.readBy) // a failure shows up in the next read
}

// deadlineSlack is how far extendRead sets the deadline beyond Timeout:
// a sixteenth of it, at most a second.
func deadlineSlack(timeout time.Duration) time.Duration {
	return min(timeout/16, time.Second)
}

// TraceListingLines is how many lines of one listing Options.Trace gets.
const TraceListingLines = 100

func (c *Client) trace(dir byte, line string) {
	if c.opt.Trace != nil {
		c.opt.Trace(dir, line)
	}
}

// traceLine traces a line received, masked and with control characters
// replaced, if someone listens.
func (c *Client) traceLine(line []byte) {
	if c.opt.Trace != nil {
		c.opt.Trace('S', c.scrub(clean(line)))
	}
}

// traceListingEnd notes the lines of a listing of n lines that were not
// traced.
func (c *Client) traceListingEnd(cmd string, n int) {
	if c.opt.Trace != nil && n > TraceListingLines {
		c.opt.Trace('S', fmt.Sprintf("[%s: %d more listing lines, not traced]", cmd, n-TraceListingLines))
	}
}

// scrub masks the password of a login in progress in server text, in case
// a server echoes it, as sent or in base64.
func (c *Client) scrub(s string) string {
	for _, sec := range c.secrets {
		s = strings.ReplaceAll(s, sec, "****")
	}
	return s
}

// hide adds secrets, and their base64 forms, to what scrub masks until
// the login ends (forget), longest first so that no part of one is left.
func (c *Client) hide(secrets ...string) {
	for _, sec := range secrets {
		if sec != "" {
			c.secrets = append(c.secrets, sec, base64.StdEncoding.EncodeToString([]byte(sec)))
		}
	}
	slices.SortFunc(c.secrets, func(a, b string) int { return len(b) - len(a) })
}

// forget ends a login: server text is shown as it is again.
func (c *Client) forget() { c.secrets = nil }
