package smtpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"example.org/popspool/shared/liveness"
)

// Conn is one SMTP or LMTP session. It is not safe for concurrent use.
type Conn struct {
	c       *smtp.Client
	w       *wire
	o       Options
	helo    string
	lmtp    bool
	rehello bool              // go-smtp forgot the EHLO on RSET; say it again before MAIL
	in, out []byte            // the body's read buffer and stuffed output, kept for the next message
	r       *textproto.Reader // replies to pipelined commands, made on first use
}

// Dial connects to t, reads the greeting, says EHLO (LHLO for LMTP), runs
// STARTTLS as o.StartTLS says and authenticates if o.Username is set.
// Cancelling ctx while Dial runs closes the connection; once Dial has
// returned, ctx no longer matters (Send takes its own).
func Dial(ctx context.Context, t Target, o Options) (*Conn, error) {
	o, err := o.withDefaults()
	if err == nil {
		err = t.check()
	}
	if err != nil {
		return nil, &Error{Op: "dial", Err: err}
	}
	raw, err := dialRaw(ctx, t, o.Connect)
	if err != nil {
		return nil, &Error{Op: "dial", Err: err}
	}
	c := &Conn{w: newWire(raw, o.DataBlock), o: o, helo: o.Helo}
	c.w.beat = liveness.From(ctx)
	if o.Trace != nil {
		c.w.tr = &tracer{fn: o.Trace, secrets: c.secrets()}
	}
	if c.helo == "" {
		c.helo = defaultHelo(raw.LocalAddr())
	}
	stop := context.AfterFunc(ctx, c.w.kill)
	defer stop()
	if err := c.open(ctx, t); err != nil {
		c.w.kill()
		return nil, withCause(ctx, err)
	}
	return c, nil
}

// dialRaw connects with TCP_NODELAY (commands are small and each waits for
// its reply, so Nagle only adds latency).
func dialRaw(ctx context.Context, t Target, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, t.network(), t.Addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		if err := tc.SetNoDelay(true); err != nil {
			_ = conn.Close() // the SetNoDelay error is the one to report
			return nil, err
		}
	}
	return conn, nil
}

// open brings the session from a fresh connection to ready-for-MAIL.
func (c *Conn) open(ctx context.Context, t Target) error {
	switch {
	case t.Scheme == "smtps":
		if err := c.w.upgrade(ctx, c.o.tlsConfig(t), c.o.Command); err != nil {
			return &Error{Op: "tls", Err: err}
		}
	case c.o.StartTLS == StartTLSRequired,
		c.o.StartTLS == StartTLSOpportunistic && t.network() == "tcp":
		if err := c.startTLS(ctx, t); err != nil {
			return err
		}
	}
	c.lmtp = t.lmtp()
	c.c = smtp.NewClient(c.w)
	if c.lmtp {
		c.c = smtp.NewClientLMTP(c.w)
	}
	c.c.CommandTimeout = c.o.Greeting
	if err := c.c.Hello(c.helo); err != nil {
		return replyError("EHLO", err)
	}
	if c.o.Username != "" {
		return c.auth()
	}
	return nil
}

// startTLS runs the opening itself (greeting, EHLO, STARTTLS), because
// go-smtp v0.25.1 has STARTTLS only as mandatory (NewClientStartTLS, which
// also says EHLO as "localhost") and its Client.startTLS is unexported.
// Afterwards a local 220 line stands in for the greeting go-smtp expects,
// and go-smtp's EHLO is the fresh one RFC 3207 §4.2 asks for after TLS (or
// a second EHLO on plain text, which RFC 5321 §4.1.4 allows).
func (c *Conn) startTLS(ctx context.Context, t Target) error {
	r := textproto.NewReader(bufio.NewReader(c.w))
	if _, err := c.exchange(r, "", 220, "greeting", c.o.Greeting); err != nil {
		return err
	}
	verb := "EHLO "
	if t.lmtp() {
		verb = "LHLO "
	}
	msg, err := c.exchange(r, verb+c.helo, 250, "EHLO", c.o.Command)
	if err == nil && !offers(msg, "STARTTLS") {
		err = &Error{Op: "STARTTLS", Err: ErrNoStartTLS}
	}
	if err == nil {
		_, err = c.exchange(r, "STARTTLS", 220, "STARTTLS", c.o.Command)
	}
	if err != nil {
		return c.withoutTLS(r, err)
	}
	if r.R.Buffered() > 0 || c.w.pending() {
		return &Error{Op: "STARTTLS", Err: ErrInjection}
	}
	if err := c.w.upgrade(ctx, c.o.tlsConfig(t), c.o.Command); err != nil {
		return &Error{Op: "tls", Err: err}
	}
	c.w.inject("220 smtpc: TLS is up, greeting was read before\r\n")
	return nil
}

// withoutTLS decides what a failed EHLO/STARTTLS means: the end of the
// session (I/O error, or TLS required), or going on in clear text.
func (c *Conn) withoutTLS(r *textproto.Reader, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	if e.Code == 421 || e.Code == 0 && !errors.Is(e, ErrNoStartTLS) {
		return e // I/O error or 421 (RFC 5321 §3.8): the session is gone
	}
	if c.o.StartTLS == StartTLSRequired {
		// A courtesy QUIT (RFC 5321 §4.1.1.10), not worth a long wait.
		_, _ = c.exchange(r, "QUIT", 221, "QUIT", min(c.o.Command, 10*time.Second))
		if e.Code != 0 {
			e.Err = errors.Join(ErrNoStartTLS, e.Err)
		}
		return e
	}
	c.w.inject("220 smtpc: continuing without TLS, greeting was read before\r\n")
	return nil
}

// exchange sends cmd (none if "") and reads the reply.
func (c *Conn) exchange(r *textproto.Reader, cmd string, want int, op string, timeout time.Duration) (string, error) {
	if err := c.w.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", &Error{Op: op, Err: err}
	}
	defer c.w.SetDeadline(time.Time{}) //nolint:errcheck // a failure shows on the next I/O
	if cmd != "" {
		if _, err := c.w.Write([]byte(cmd + "\r\n")); err != nil {
			return "", &Error{Op: op, Err: err}
		}
	}
	_, msg, err := r.ReadResponse(want)
	if err != nil {
		return "", replyError(op, err)
	}
	return msg, nil
}

// offers reports whether an EHLO reply lists keyword (RFC 5321 §4.1.1.1).
func offers(reply, keyword string) bool {
	lines := strings.Split(reply, "\n")
	for _, l := range lines[1:] {
		if k, _, _ := strings.Cut(l, " "); strings.EqualFold(k, keyword) {
			return true
		}
	}
	return false
}

// auth runs AUTH PLAIN, or LOGIN, only where the password cannot be
// sniffed (RFC 4616 §6, RFC 4954 §4).
func (c *Conn) auth() error {
	if !c.w.tls() && !c.w.loopback() {
		return &Error{Op: "AUTH", Err: ErrInsecureAuth}
	}
	var mech sasl.Client
	switch {
	case c.c.SupportsAuth("PLAIN"):
		mech = sasl.NewPlainClient("", c.o.Username, c.o.Password)
	case c.c.SupportsAuth("LOGIN"):
		mech = sasl.NewLoginClient(c.o.Username, c.o.Password)
	default:
		return &Error{Op: "AUTH", Err: ErrNoAuthMech}
	}
	c.c.CommandTimeout = c.o.Command
	if err := c.c.Auth(mech); err != nil {
		return replyError("AUTH", c.mask(err))
	}
	return nil
}

// mask hides the password in err, as sent or in base64 (the PLAIN
// response, LOGIN's answer), in case the server echoes it in its reply.
func (c *Conn) mask(err error) error {
	hide := func(s string) string { return hideSecrets(c.o, s) }
	if hide(err.Error()) == err.Error() {
		return err
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		masked := *se
		masked.Message = hide(se.Message)
		return &masked
	}
	return errors.New(hide(err.Error()))
}

// hideSecrets replaces o's password in s, as sent or in base64.
func hideSecrets(o Options, s string) string {
	for _, sec := range secretsOf(o) {
		s = strings.ReplaceAll(s, sec, "****")
	}
	return s
}

// secrets are what a server could echo of the password: the PLAIN
// response and the password in base64 (LOGIN's answer), and as it is;
// longest first, so that no part of one is left. None without a password.
func (c *Conn) secrets() []string { return secretsOf(c.o) }

func secretsOf(o Options) []string {
	if o.Password == "" {
		return nil
	}
	return []string{
		base64.StdEncoding.EncodeToString([]byte("\x00" + o.Username + "\x00" + o.Password)),
		base64.StdEncoding.EncodeToString([]byte(o.Password)),
		o.Password,
	}
}

// TLS reports whether the session is encrypted (smtps or STARTTLS).
func (c *Conn) TLS() bool { return c.w.tls() }

// TLSConnectionState returns the TLS state, if the session is encrypted.
func (c *Conn) TLSConnectionState() (tls.ConnectionState, bool) {
	if tc, ok := c.w.Conn.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// Broken reports whether the connection can no longer be used: after a
// connection-level error, a 421 reply, a cancelled context, or Close.
func (c *Conn) Broken() bool { return c.w.broken.Load() }
