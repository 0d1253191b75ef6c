package pop3

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// SASLClient is one SASL mechanism, client side (RFC 4422). Its method set
// is that of github.com/emersion/go-sasl's Client, so those clients can be
// passed to Auth as they are.
type SASLClient interface {
	// Start returns the mechanism name and the initial response; a nil
	// initial response means none is sent with the AUTH command.
	Start() (mech string, ir []byte, err error)
	// Next answers a server challenge.
	Next(challenge []byte) (response []byte, err error)
}

// maxAuthSteps bounds the challenges one AUTH exchange may bring.
const maxAuthSteps = 16

// Login authenticates with USER and PASS (RFC 1939 §7). It refuses, sending
// nothing, on a connection without TLS unless Options.AllowPlaintext is set.
// The password never appears in traces or errors.
func (c *Client) Login(user, pass string) error {
	if err := c.checkSecure("USER"); err != nil {
		return err
	}
	c.hide(pass)
	defer c.forget()
	c.caps = nil // RFC 2449 §5: capabilities may change after login
	if _, err := c.cmd("USER " + user); err != nil {
		return err
	}
	_, err := c.cmdSecret("PASS "+pass, "PASS", "PASS ****")
	return err
}

// APOP authenticates with the MD5 digest of the greeting's timestamp and
// the password (RFC 1939 §7 APOP). MD5 is weak, so the same TLS rule as for
// Login applies.
func (c *Client) APOP(user, pass string) error {
	name := "APOP " + user
	if err := c.checkSecure(name); err != nil {
		return err
	}
	ts := apopTimestamp(c.greeting)
	if ts == "" {
		return fmt.Errorf("pop3 %s: greeting has no <timestamp@host>", name)
	}
	sum := md5.Sum([]byte(ts + pass))
	digest := hex.EncodeToString(sum[:])
	c.hide(pass, digest)
	defer c.forget()
	c.caps = nil
	_, err := c.cmdSecret(name+" "+digest, name, name+" ****")
	return err
}

// APOPAvailable reports whether the greeting carries the timestamp APOP
// needs (RFC 1939 §7).
func (c *Client) APOPAvailable() bool { return apopTimestamp(c.greeting) != "" }

// apopTimestamp finds the "<...@...>" msg-id in the greeting (RFC 1939 §7).
func apopTimestamp(greeting string) string {
	i := strings.IndexByte(greeting, '<')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(greeting[i:], '>')
	if j < 0 {
		return ""
	}
	ts := greeting[i : i+j+1]
	if !strings.Contains(ts, "@") || strings.ContainsAny(ts, " ?") {
		return ""
	}
	return ts
}

// Auth authenticates with a SASL mechanism (RFC 5034). The TLS rule of Login
// applies. Payloads are traced as "****", and masked in what the server
// says until the exchange ends, in case it echoes them (with the password
// or token itself, for the mechanisms of this package). If the mechanism
// fails, the exchange is cancelled with "*" and the session stays usable.
func (c *Client) Auth(a SASLClient) error {
	mech, ir, err := a.Start()
	if err != nil {
		return fmt.Errorf("pop3 AUTH: start mechanism: %w", err)
	}
	h, known := a.(secretHolder)
	if known {
		c.hide(h.secret())
	}
	c.hide(string(ir))
	defer c.forget()
	name := "AUTH " + mech
	if !validMech(mech) {
		return fmt.Errorf("pop3 AUTH: invalid mechanism name %q", mech)
	}
	if err := c.checkSecure(name); err != nil {
		return err
	}
	if err := c.usable(name); err != nil {
		return err
	}
	c.caps = nil
	line, shown, pending := authLine(mech, ir)
	if err := c.setDeadline(); err != nil {
		return c.fatal(name, err)
	}
	if err := c.send(line, name, shown); err != nil {
		return err
	}
	if err := c.flush(name); err != nil {
		return err
	}
	return c.authExchange(name, a, pending, !known)
}

// authLine builds "AUTH mech [initial-response]" (RFC 5034 §4). An empty
// initial response is sent as "=". The command may not exceed 255 octets,
// so a longer initial response is returned as pending, to be sent in answer
// to the server's first, empty challenge.
func authLine(mech string, ir []byte) (line, shown string, pending []byte) {
	line = "AUTH " + mech
	if ir == nil {
		return line, line, nil
	}
	enc := "="
	if len(ir) > 0 {
		enc = base64.StdEncoding.EncodeToString(ir)
	}
	if len(line)+1+len(enc)+2 > 255 {
		return line, line, ir
	}
	return line + " " + enc, line + " ****", nil
}

// authExchange answers "+ challenge" lines until the final status line.
// hideAll masks every response in server text, for a mechanism that does
// not name its secret (the user name, LOGIN's first answer, is masked too).
func (c *Client) authExchange(name string, a SASLClient, pending []byte, hideAll bool) error {
	for range maxAuthSteps {
		raw, err := c.readLine(name)
		if err != nil {
			return err
		}
		line := trimEOL(raw)
		if !isContinuation(line) {
			_, err := c.status(name, line)
			return err
		}
		c.traceLine(line)
		resp, err := saslStep(a, line[1:], &pending)
		if err != nil {
			return c.authCancel(name, err)
		}
		if hideAll {
			c.hide(string(resp))
		}
		if err := c.send(base64.StdEncoding.EncodeToString(resp), name, "****"); err != nil {
			return err
		}
		if err := c.flush(name); err != nil {
			return err
		}
	}
	return c.fatal(name, fmt.Errorf("%w: more than %d SASL challenges", ErrProtocol, maxAuthSteps))
}

// isContinuation reports whether line is a SASL challenge, "+" or "+ data"
// (RFC 5034 §4), rather than "+OK".
func isContinuation(line []byte) bool {
	return len(line) == 1 && line[0] == '+' || bytes.HasPrefix(line, []byte("+ "))
}

// saslStep decodes one challenge and computes the response. A pending
// initial response answers the first challenge, which must be empty.
func saslStep(a SASLClient, b64 []byte, pending *[]byte) ([]byte, error) {
	chal, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b64)))
	if err != nil {
		return nil, fmt.Errorf("%w: challenge is not base64", ErrProtocol)
	}
	if *pending != nil {
		resp := *pending
		*pending = nil
		if len(chal) != 0 {
			return nil, fmt.Errorf("%w: non-empty first challenge to a client-first mechanism", ErrProtocol)
		}
		return resp, nil
	}
	resp, err := a.Next(chal)
	if err != nil {
		return nil, fmt.Errorf("mechanism: %w", err)
	}
	return resp, nil
}

// authCancel sends "*", which the server must answer with -ERR (RFC 5034
// §4), and returns cause. The session stays usable unless that fails.
func (c *Client) authCancel(name string, cause error) error {
	if err := c.send("*", name, "*"); err != nil {
		return err
	}
	if err := c.flush(name); err != nil {
		return err
	}
	_, err := c.readStatus(name)
	var perr *Error
	if err != nil && !errors.As(err, &perr) {
		return err
	}
	return fmt.Errorf("pop3 %s: cancelled: %w", name, cause)
}

// validMech checks a SASL mechanism name (RFC 4422 §3.1: 1 to 20 of
// A-Z, 0-9, "-" and "_").
func validMech(m string) bool {
	if len(m) == 0 || len(m) > 20 {
		return false
	}
	for i := 0; i < len(m); i++ {
		b := m[i]
		if !(b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// checkSecure refuses credentials on a connection without TLS unless the
// caller allowed it. Nothing has been sent, so the session stays usable.
func (c *Client) checkSecure(name string) error {
	if c.isTLS || c.opt.AllowPlaintext {
		return nil
	}
	return fmt.Errorf("pop3 %s: %w: connection is not TLS and plaintext login is not allowed", name, ErrInsecure)
}
