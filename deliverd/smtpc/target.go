package smtpc

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Target names the server deliverd hands mail to.
type Target struct {
	Scheme string // "smtp", "smtps" (implicit TLS), "lmtp" or "lmtp+unix"
	Addr   string // host:port, or the socket path for lmtp+unix
}

// defaultPorts: smtp 25 (RFC 5321), submissions 465 (RFC 8314), lmtp 24
// (IANA; RFC 2033 forbids LMTP on port 25).
var defaultPorts = map[string]string{"smtp": "25", "smtps": "465", "lmtp": "24"}

// ParseTarget parses "smtp://127.0.0.1:25", "smtps://host:465",
// "lmtp://host:24" or "lmtp+unix:///run/dovecot/lmtp". A missing port is
// filled with the scheme's default.
func ParseTarget(s string) (Target, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Target{}, fmt.Errorf("smtpc: target %q: %w", s, err)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return Target{}, fmt.Errorf("smtpc: target %q: only scheme, host, port (or socket path) are allowed", s)
	}
	if u.Scheme == "lmtp+unix" {
		if u.Host != "" || u.Path == "" {
			return Target{}, fmt.Errorf("smtpc: target %q: want lmtp+unix:///path/to/socket", s)
		}
		return Target{Scheme: u.Scheme, Addr: u.Path}, nil
	}
	port, ok := defaultPorts[u.Scheme]
	if !ok {
		return Target{}, fmt.Errorf("smtpc: target %q: scheme must be smtp, smtps, lmtp or lmtp+unix", s)
	}
	if u.Hostname() == "" || (u.Path != "" && u.Path != "/") {
		return Target{}, fmt.Errorf("smtpc: target %q: want %s://host[:port]", s, u.Scheme)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	return Target{Scheme: u.Scheme, Addr: net.JoinHostPort(u.Hostname(), port)}, nil
}

// String returns the target in the form ParseTarget accepts.
func (t Target) String() string {
	if t.Scheme == "lmtp+unix" {
		return "lmtp+unix://" + t.Addr
	}
	return t.Scheme + "://" + t.Addr
}

func (t Target) lmtp() bool { return strings.HasPrefix(t.Scheme, "lmtp") }

func (t Target) network() string {
	if t.Scheme == "lmtp+unix" {
		return "unix"
	}
	return "tcp"
}

// host is the TLS server name for the target, "" for a unix socket.
func (t Target) host() string {
	if t.network() == "unix" {
		return ""
	}
	h, _, err := net.SplitHostPort(t.Addr)
	if err != nil {
		return t.Addr
	}
	return h
}

func (t Target) check() error {
	switch t.Scheme {
	case "smtp", "smtps", "lmtp", "lmtp+unix":
	default:
		return fmt.Errorf("smtpc: unknown scheme %q", t.Scheme)
	}
	if t.Addr == "" {
		return fmt.Errorf("smtpc: empty address for %s", t.Scheme)
	}
	return nil
}
