package smtpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"

	"github.com/emersion/go-smtp"
)

// Error is a failure of the connection or session, as opposed to a
// server's verdict on a recipient (those are in Result).
type Error struct {
	// Op is the step that failed: "dial", "tls", "greeting", "EHLO",
	// "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "body" (reading the
	// message failed; nothing was delivered), "dot" (waiting for the reply
	// to the final dot), "RSET", "QUIT". A refused greeting is "greeting"
	// when smtpc read it (STARTTLS modes over TCP), else "EHLO".
	Op string
	// Code and Enhanced hold the server's reply when there was one (a 421,
	// a 554 greeting, a refused STARTTLS or AUTH); 0 and "" otherwise.
	Code     int
	Enhanced string
	// AfterDot reports that the final "." had been written when the
	// connection failed: the server may have taken the message without our
	// hearing it, so sending again can duplicate it (RFC 1047).
	AfterDot bool
	Err      error
}

func (e *Error) Error() string {
	s := "smtpc: " + e.Op + ": " + e.Err.Error()
	if e.AfterDot {
		s += " (after the final dot: the message may have been delivered)"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary is false only for a 5xx reply. Unknown failures (I/O,
// timeouts) are temporary: retrying is safe, dropping is not.
func (e *Error) Temporary() bool { return e.Code/100 != 5 }

// Timeout reports whether a deadline (one of the Timeouts) expired.
func (e *Error) Timeout() bool {
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

var (
	// ErrNoStartTLS: StartTLS is "required" and the server did not offer
	// STARTTLS or refused it.
	ErrNoStartTLS = errors.New("STARTTLS required but not available")
	// ErrInsecureAuth: credentials are set but the session is neither TLS
	// nor to a loopback address or unix socket.
	ErrInsecureAuth = errors.New("refusing AUTH over plaintext to a non-loopback server")
	// ErrNoAuthMech: the server offers neither AUTH PLAIN nor AUTH LOGIN.
	ErrNoAuthMech = errors.New("server offers neither AUTH PLAIN nor AUTH LOGIN")
	// ErrInjection: bytes followed the 220 reply to STARTTLS before the TLS
	// handshake (a response-injection attempt, cf. CVE-2011-0411).
	ErrInjection = errors.New("data after the STARTTLS reply")
	// ErrReplyTooLong: a reply line, or a multi-line reply, exceeded the
	// limits smtpc reads (see maxLine); the session was dropped.
	ErrReplyTooLong = errors.New("server reply too long")
	// ErrBroken: the Conn cannot be used any more (see Conn.Broken).
	ErrBroken = errors.New("connection is broken")
)

// replyError converts err into *Error, keeping the server's reply code
// if err carries one.
func replyError(op string, err error) *Error {
	e := &Error{Op: op, Err: err}
	if s, ok := replyStatus(err); ok {
		e.Code, e.Enhanced = s.Code, s.Enhanced
	}
	return e
}

// replyStatus returns the Status for err if err is a server reply.
func replyStatus(err error) (Status, bool) {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return smtpErrorStatus(se), true
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return replyToStatus(te.Code, te.Msg), true
	}
	return Status{}, false
}

// withCause makes a cancelled context visible through errors.Is.
func withCause(ctx context.Context, err error) error {
	var e *Error
	if ctx.Err() == nil || !errors.As(err, &e) || errors.Is(err, ctx.Err()) {
		return err
	}
	e.Err = fmt.Errorf("%w: %w", context.Cause(ctx), e.Err)
	return err
}
