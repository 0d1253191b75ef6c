package config

import (
	"net"
	"strconv"
)

// Metrics configures the optional Prometheus endpoints, one per daemon
// (each is its own process, so each needs its own port). All are off
// unless given an address. The endpoints have no authentication, so they
// bind to loopback only unless AllowRemote says otherwise.
type Metrics struct {
	Fetchd      string `toml:"fetchd"`   // e.g. "127.0.0.1:9701"
	Rewrited    string `toml:"rewrited"` // e.g. "127.0.0.1:9702"
	Deliverd    string `toml:"deliverd"` // e.g. "127.0.0.1:9703"
	AllowRemote bool   `toml:"allow_remote"`
}

// Listen returns the address of daemon's endpoint, or "" when it is off.
func (m *Metrics) Listen(daemon string) string {
	switch daemon {
	case "fetchd":
		return m.Fetchd
	case "rewrited":
		return m.Rewrited
	case "deliverd":
		return m.Deliverd
	}
	return ""
}

func (m *Metrics) validate(p *problems) {
	seen := map[string]string{}
	for _, d := range []string{"fetchd", "rewrited", "deliverd"} {
		addr := m.Listen(d)
		if addr == "" {
			continue
		}
		key := "metrics." + d
		host, port, err := net.SplitHostPort(addr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
			p.add(key, "%q is not host:port, like 127.0.0.1:9701", addr)
			continue
		}
		if !m.AllowRemote && !loopback(host) {
			p.add(key, "%q is reachable from other machines and the endpoint has no authentication; use 127.0.0.1 (or set allow_remote = true)", addr)
		}
		if other, dup := seen[port]; dup {
			p.add(key, "port %s is also %s's", port, other)
		}
		seen[port] = d
	}
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
