package smtpc

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// STARTTLS modes for Options.StartTLS.
const (
	StartTLSOpportunistic = "opportunistic" // use STARTTLS when the server offers it (default)
	StartTLSRequired      = "required"      // fail before MAIL unless STARTTLS succeeds
	StartTLSNone          = "none"          // never send STARTTLS
)

// Options configure Dial. The zero value is usable.
type Options struct {
	// Helo is the EHLO/LHLO name. If empty: os.Hostname() if it contains a
	// dot, else the address literal of the local address ("[127.0.0.1]",
	// "[IPv6:::1]"), as RFC 5321 §4.1.4 allows when there is no FQDN.
	Helo string
	// StartTLS is one of the StartTLS* constants; "" means opportunistic.
	// It has no effect on smtps (TLS from the start). Over a unix socket
	// opportunistic means none: there is no host name to verify.
	StartTLS string
	// TLSConfig for smtps and STARTTLS. Certificates are verified unless it
	// says otherwise; ServerName is set from the target host when empty.
	TLSConfig *tls.Config
	// Username and Password enable AUTH PLAIN (or LOGIN) after EHLO, only
	// over TLS or to a loopback/unix-socket server (RFC 4616 §6).
	Username, Password string
	// Trace, if set, gets the dialogue line by line without CRLF: dir is
	// 'C' for a command sent, 'S' for a reply line received. The message
	// body is not traced: a note in brackets gives its size (another marks
	// the end of a TLS handshake). AUTH
	// responses are traced as "****", and the password, as sent or in
	// base64, is masked in replies. Control characters are replaced by
	// '?'. When Trace is nil no line is built for it. It is called by the
	// goroutine using the Conn.
	Trace func(dir byte, line string)
	// NoPipelining makes Send wait for each reply before the next command
	// even when the server offers PIPELINING (RFC 2920).
	NoPipelining bool
	Timeouts
}

// Timeouts follow RFC 5321 §4.5.3.2. Zero fields take the defaults.
type Timeouts struct {
	Connect   time.Duration // TCP/unix connect (not in the RFC): 30s
	Greeting  time.Duration // 220 greeting, and the EHLO go-smtp sends with it: 5m
	Command   time.Duration // EHLO, STARTTLS, TLS handshake, AUTH, RSET, QUIT: 5m
	Mail      time.Duration // MAIL reply: 5m
	Rcpt      time.Duration // each RCPT reply: 5m
	DataInit  time.Duration // 354 reply to DATA: 2m
	DataBlock time.Duration // each write of the message body ("data block"): 3m
	FinalDot  time.Duration // reply to the final ".": 10m
}

var defaultTimeouts = Timeouts{
	Connect:   30 * time.Second,
	Greeting:  5 * time.Minute,
	Command:   5 * time.Minute,
	Mail:      5 * time.Minute,
	Rcpt:      5 * time.Minute,
	DataInit:  2 * time.Minute,
	DataBlock: 3 * time.Minute,
	FinalDot:  10 * time.Minute,
}

// LongestStep is the longest one step of a session may take with the
// default time-outs (the wait for the final dot's reply): a loop that
// waits longer than that without a byte moving is hung.
func LongestStep() time.Duration {
	t := defaultTimeouts
	return max(t.Connect, t.Greeting, t.Command, t.Mail, t.Rcpt, t.DataInit, t.DataBlock, t.FinalDot)
}

func (t Timeouts) withDefaults() Timeouts {
	d := defaultTimeouts
	for _, f := range []struct{ v, def *time.Duration }{
		{&t.Connect, &d.Connect}, {&t.Greeting, &d.Greeting}, {&t.Command, &d.Command},
		{&t.Mail, &d.Mail}, {&t.Rcpt, &d.Rcpt}, {&t.DataInit, &d.DataInit},
		{&t.DataBlock, &d.DataBlock}, {&t.FinalDot, &d.FinalDot},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return t
}

func (o Options) withDefaults() (Options, error) {
	switch o.StartTLS {
	case "":
		o.StartTLS = StartTLSOpportunistic
	case StartTLSOpportunistic, StartTLSRequired, StartTLSNone:
	default:
		return o, fmt.Errorf("smtpc: StartTLS %q is not opportunistic, required or none", o.StartTLS)
	}
	if strings.ContainsAny(o.Helo, "\r\n ") {
		return o, fmt.Errorf("smtpc: Helo %q contains a space or line break", o.Helo)
	}
	o.Timeouts = o.Timeouts.withDefaults()
	return o, nil
}

// tlsConfig returns a copy of o.TLSConfig with ServerName filled in.
func (o Options) tlsConfig(t Target) *tls.Config {
	cfg := &tls.Config{}
	if o.TLSConfig != nil {
		cfg = o.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = t.host()
	}
	return cfg
}

// defaultHelo: the host name if it is an FQDN, else an address literal of
// the local end.
func defaultHelo(local net.Addr) string {
	if h, err := os.Hostname(); err == nil && strings.Contains(strings.TrimSuffix(h, "."), ".") {
		return strings.TrimSuffix(h, ".")
	}
	return addrLiteral(local)
}

// addrLiteral is the RFC 5321 §4.1.3 address literal for a TCP address
// ("[192.0.2.1]", "[IPv6:2001:db8::1]"); "localhost" for a unix socket.
func addrLiteral(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return "localhost"
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		return "[" + ip4.String() + "]"
	}
	return "[IPv6:" + ta.IP.String() + "]"
}
