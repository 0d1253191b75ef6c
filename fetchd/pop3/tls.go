package pop3

import (
	"crypto/tls"
	"fmt"
)

// startTLS upgrades the session with STLS (RFC 2595 §4). It never falls back
// to clear text: no STLS in CAPA, an -ERR reply or a failed handshake is an
// error wrapping ErrInsecure (or the handshake's error).
func (c *Client) startTLS() error {
	caps, err := c.Capabilities()
	if err != nil {
		return err
	}
	if !caps.STLS {
		return c.fatal("STLS", fmt.Errorf("%w: server does not list STLS in CAPA", ErrInsecure))
	}
	if _, err := c.cmd("STLS"); err != nil {
		return c.fatal("STLS", fmt.Errorf("%w: %w", ErrInsecure, err))
	}
	// Anything the server sent after its +OK would be read as if it had come
	// through TLS: the plaintext command injection of CVE-2011-0411.
	if n := c.r.Buffered(); n > 0 {
		return c.fatal("STLS", fmt.Errorf("%w: %d octets sent after the STLS reply, before TLS", ErrProtocol, n))
	}
	return c.handshake("STLS")
}

// handshake runs the client side of TLS over the current connection.
func (c *Client) handshake(name string) error {
	if err := c.setDeadline(); err != nil {
		return c.fatal(name, err)
	}
	tc := tls.Client(c.conn, c.opt.TLSConfig)
	if err := tc.HandshakeContext(c.ctx); err != nil {
		return c.fatal(name, fmt.Errorf("TLS handshake: %w", err))
	}
	c.conn = tc
	c.r.Reset(tc)
	c.w.Reset(tc)
	c.isTLS = true
	c.caps = nil // RFC 2595 §4: discard capabilities learnt before TLS
	if c.opt.Trace != nil {
		c.opt.Trace('C', "[TLS handshake done, "+tls.VersionName(tc.ConnectionState().Version)+"]")
	}
	return nil
}

// StartTLS upgrades a session that was opened with TLSNone by STLS (RFC
// 2595 §4), exactly as Dial does for TLSStartTLS, for callers that report
// each step on its own (fetchd check). Options.TLSConfig must name the
// server. On failure the session is lost: there is no way back to clear
// text.
func (c *Client) StartTLS() error {
	if c.isTLS {
		return fmt.Errorf("pop3 STLS: session is already TLS")
	}
	if err := c.usable("STLS"); err != nil {
		return err
	}
	return c.startTLS()
}

// ConnectionState returns the state of the TLS connection; ok is false
// when the session is not protected by TLS.
func (c *Client) ConnectionState() (state tls.ConnectionState, ok bool) {
	tc, isTLS := c.conn.(*tls.Conn)
	if !isTLS {
		return tls.ConnectionState{}, false
	}
	return tc.ConnectionState(), true
}
