// Package faultproxy is a TCP proxy on loopback that cuts connections where
// a test says: it passes lines between a client and a real server and asks
// a rule about each line, in each direction, before forwarding it. When the
// rule says so, both connections are closed at once and the line is not
// forwarded, which is what a dropped link looks like to both ends.
//
// It sees clear text only: put it in front of a server's plain port. In
// front of a TLS port use StartRaw (raw.go), which cuts and stalls at the
// TCP level, after N bytes, and reads no protocol.
//
//	p := faultproxy.Start(t, dc.Addr, func(conn int, dir faultproxy.Dir, line []byte) bool {
//		return conn == 1 && dir == faultproxy.Up && string(line) == "QUIT\r\n"
//	})
//	... point the client at p.Addr ...
//
// A Filter can also answer a line itself, in the server's place, for a
// refusal a real server will not give on demand (an SMTP 451 to one RCPT):
// the line is swallowed and the answer goes back to its sender.
//
//	p := faultproxy.StartFilter(t, pf.Addr, func(conn int, dir faultproxy.Dir, line []byte) faultproxy.Action {
//		if dir == faultproxy.Up && bytes.HasPrefix(line, []byte("RCPT ")) {
//			return faultproxy.Action{Reply: []byte("451 4.3.0 try again later\r\n")}
//		}
//		return faultproxy.Pass
//	})
package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Dir is the direction of a line.
type Dir int

const (
	Up   Dir = iota // client to server
	Down            // server to client
)

func (d Dir) String() string {
	if d == Up {
		return "client>server"
	}
	return "server>client"
}

// Rule is asked about every line (CRLF included; a line longer than the
// buffer comes in pieces) of connection conn, numbered from 1 in the order
// accepted. Returning true cuts the connection before the line is
// forwarded. It is called from several goroutines.
type Rule func(conn int, dir Dir, line []byte) bool

// Filter returns the rule as a Filter that only cuts.
func (r Rule) Filter() Filter {
	return func(conn int, dir Dir, line []byte) Action {
		return Action{Cut: r(conn, dir, line)}
	}
}

// Action is what a Filter does with a line.
type Action struct {
	// Cut closes both connections; the line is not forwarded.
	Cut bool
	// Reply, when not nil (and Cut is false), swallows the line and
	// writes Reply back to the side that sent it, as if the other side
	// had answered. The filter must only answer when that side awaits
	// nothing else (for SMTP: no pipelined command pending), as the
	// answer is written at once, between two lines of the other
	// direction.
	Reply []byte
}

// Pass forwards the line.
var Pass = Action{}

// Filter is a Rule that may also answer a line itself. It is called from
// several goroutines.
type Filter func(conn int, dir Dir, line []byte) Action

// bufSize is the read buffer per direction; longer lines come in pieces.
const bufSize = 64 << 10

// Proxy is a running proxy.
type Proxy struct {
	Addr string // "127.0.0.1:port" to connect to instead of the target

	target  string
	filter  Filter
	ln      net.Listener
	wg      sync.WaitGroup
	conns   atomic.Int64
	cuts    atomic.Int64
	replies atomic.Int64
}

// Start listens on a free loopback port and forwards every connection to
// target. It is closed when tb ends. A nil rule passes everything.
func Start(tb testing.TB, target string, rule Rule) *Proxy {
	tb.Helper()
	var f Filter
	if rule != nil {
		f = rule.Filter()
	}
	return StartFilter(tb, target, f)
}

// StartFilter is Start with a Filter, which may also answer lines.
func StartFilter(tb testing.TB, target string, filter Filter) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("faultproxy: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, filter: filter, ln: ln}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// Close stops listening and waits for the connections in progress to end.
func (p *Proxy) Close() {
	_ = p.ln.Close() // Accept returns; nothing else to report
	p.wg.Wait()
}

// Conns returns how many connections were accepted.
func (p *Proxy) Conns() int { return int(p.conns.Load()) }

// Cuts returns how many connections the rule cut.
func (p *Proxy) Cuts() int { return int(p.cuts.Load()) }

// Replies returns how many lines the filter answered itself.
func (p *Proxy) Replies() int { return int(p.replies.Load()) }

// end is one side of a proxied connection. Both pumps write to it (the
// lines of one direction, the filter's answers of the other), so writes
// take turns.
type end struct {
	net.Conn
	mu sync.Mutex
}

func (e *end) write(b []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := e.Conn.Write(b)
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		n := int(p.conns.Add(1))
		p.wg.Add(1)
		go p.serve(n, c)
	}
}

// serve pumps one connection both ways until either side ends or the rule
// cuts it.
func (p *Proxy) serve(n int, c net.Conn) {
	defer p.wg.Done()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close() // the client sees the refusal as a closed connection
		return
	}
	client, server := &end{Conn: c}, &end{Conn: s}
	var once sync.Once
	cut := func() {
		once.Do(func() {
			_ = client.Close() // both closes only end the pumps
			_ = server.Close()
		})
	}
	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); p.pump(n, Up, client, server, cut) }()
	go func() { defer pumps.Done(); p.pump(n, Down, server, client, cut) }()
	pumps.Wait()
	cut()
}

// pump forwards src to dst line by line. At the end of src it half-closes
// dst so the other side sees EOF after the last line, as with a direct
// connection.
func (p *Proxy) pump(n int, dir Dir, src, dst *end, cut func()) {
	r := bufio.NewReaderSize(src, bufSize)
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			a := Pass
			if p.filter != nil {
				a = p.filter(n, dir, line)
			}
			to, out := dst, line
			switch {
			case a.Cut:
				p.cuts.Add(1)
				cut()
				return
			case a.Reply != nil:
				p.replies.Add(1)
				to, out = src, a.Reply
			}
			if werr := to.write(out); werr != nil {
				cut()
				return
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.Conn.(*net.TCPConn); ok {
					_ = tc.CloseWrite() // the peer may already be gone
					return
				}
			}
			cut()
			return
		}
	}
}
