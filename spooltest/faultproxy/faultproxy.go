// Package faultproxy is a TCP proxy on loopback that cuts connections where
// a test says: it passes lines between a client and a real server and asks
// a rule about each line, in each direction, before forwarding it. When the
// rule says so, both connections are closed at once and the line is not
// forwarded, which is what a dropped link looks like to both ends.
//
// It sees clear text only: put it in front of a server's plain port.
//
//	p := faultproxy.Start(t, dc.Addr, func(conn int, dir faultproxy.Dir, line []byte) bool {
//		return conn == 1 && dir == faultproxy.Up && string(line) == "QUIT\r\n"
//	})
//	... point the client at p.Addr ...
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

// bufSize is the read buffer per direction; longer lines come in pieces.
const bufSize = 64 << 10

// Proxy is a running proxy.
type Proxy struct {
	Addr string // "127.0.0.1:port" to connect to instead of the target

	target string
	rule   Rule
	ln     net.Listener
	wg     sync.WaitGroup
	conns  atomic.Int64
	cuts   atomic.Int64
}

// Start listens on a free loopback port and forwards every connection to
// target. It is closed when tb ends.
func Start(tb testing.TB, target string, rule Rule) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("faultproxy: %v", err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, rule: rule, ln: ln}
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
func (p *Proxy) serve(n int, client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close() // the client sees the refusal as a closed connection
		return
	}
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
func (p *Proxy) pump(n int, dir Dir, src, dst net.Conn, cut func()) {
	r := bufio.NewReaderSize(src, bufSize)
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			if p.rule != nil && p.rule(n, dir, line) {
				p.cuts.Add(1)
				cut()
				return
			}
			if _, werr := dst.Write(line); werr != nil {
				cut()
				return
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite() // the peer may already be gone
					return
				}
			}
			cut()
			return
		}
	}
}
