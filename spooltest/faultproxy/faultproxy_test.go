package faultproxy

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// echo serves "+OK <line>" for every line until the client hangs up.
func echo(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte("+OK " + line))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestCutsWhereTheRuleSays(t *testing.T) {
	p := Start(t, echo(t), func(conn int, dir Dir, line []byte) bool {
		return conn == 1 && dir == Up && string(line) == "QUIT\r\n" ||
			conn == 2 && dir == Down && strings.HasPrefix(string(line), "+OK QUIT")
	})
	for conn := 1; conn <= 3; conn++ {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		c.Write([]byte("NOOP\r\n"))
		if line, err := r.ReadString('\n'); err != nil || line != "+OK NOOP\r\n" {
			t.Fatalf("conn %d: NOOP got %q %v", conn, line, err)
		}
		c.Write([]byte("QUIT\r\n"))
		line, err := r.ReadString('\n')
		if conn < 3 && err == nil {
			t.Fatalf("conn %d: not cut, got %q", conn, line)
		}
		if conn == 3 && line != "+OK QUIT\r\n" {
			t.Fatalf("conn 3: got %q %v", line, err)
		}
		c.Close()
	}
	if p.Cuts() != 2 || p.Conns() != 3 {
		t.Fatalf("cuts %d conns %d", p.Cuts(), p.Conns())
	}
}

func TestFilterAnswersInTheServersPlace(t *testing.T) {
	p := StartFilter(t, echo(t), func(conn int, dir Dir, line []byte) Action {
		if dir == Up && string(line) == "RCPT x\r\n" {
			return Action{Reply: []byte("451 not now\r\n")}
		}
		return Pass
	})
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for _, s := range []struct{ send, want string }{
		{"MAIL y\r\n", "+OK MAIL y\r\n"},
		{"RCPT x\r\n", "451 not now\r\n"}, // the server never sees it
		{"RSET\r\n", "+OK RSET\r\n"},
	} {
		c.Write([]byte(s.send))
		if line, err := r.ReadString('\n'); err != nil || line != s.want {
			t.Fatalf("%q: got %q %v, want %q", s.send, line, err, s.want)
		}
	}
	if p.Replies() != 1 || p.Cuts() != 0 {
		t.Fatalf("replies %d cuts %d", p.Replies(), p.Cuts())
	}
}
