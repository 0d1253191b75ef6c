package queue

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake is a scripted SMTP server for the faults real servers will not
// produce on demand: odd greetings, slow multi-line replies, 421 in the
// middle of a session, a hang-up after the final dot, a reply that never
// comes. It serves any number of sessions; each hook may vary by call.
type fake struct {
	ln net.Listener

	Greeting []string      // reply parts; a pause between them
	EHLO     []string      // reply parts
	DataGo   []string      // the 354 reply parts
	Pause    time.Duration // between reply parts
	// Mail answers MAIL; n counts MAILs over all sessions from 1. ""
	// means "250 2.1.0 ok"; "close" hangs up.
	Mail func(n int) string
	Rcpt func(rcpt string) string // "" means "250 2.1.5 ok"
	// Dot answers the final dot of the n-th message over all sessions:
	// "" means "250 2.0.0 queued"; "close" hangs up without a reply
	// (after the message was taken: the RFC 1047 window); "hang" never
	// answers.
	Dot func(n int) string

	once      sync.Once
	mu        sync.Mutex
	sessions  int
	mails     int
	dots      int
	got       []fakeMsg // messages answered with 2xx or left without a reply
	rcptLines []string
	stop      chan struct{}
}

type fakeMsg struct {
	rcpts []string
	data  string // dot-stuffed, as received
}

func newFake(t *testing.T) *fake {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{ln: ln, stop: make(chan struct{}),
		Greeting: []string{"220 fake.test ESMTP\r\n"},
		EHLO:     []string{"250-fake.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10000000\r\n"},
		DataGo:   []string{"354 go ahead\r\n"}}
	t.Cleanup(func() { close(f.stop); ln.Close() })
	return f
}

// url starts serving, once the test has set the hooks, and returns the
// target URL.
func (f *fake) url() string {
	f.once.Do(func() { go f.serve() })
	return "smtp://" + f.ln.Addr().String()
}

func (f *fake) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.sessions++
		f.mu.Unlock()
		go f.session(c)
	}
}

func (f *fake) say(c net.Conn, parts []string) bool {
	for i, p := range parts {
		if i > 0 {
			time.Sleep(f.Pause)
		}
		if _, err := io.WriteString(c, p); err != nil {
			return false
		}
	}
	return true
}

func (f *fake) session(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	if !f.say(c, f.Greeting) {
		return
	}
	var rcpts []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimRight(line, "\r\n"))
		reply := ""
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "LHLO"):
			if !f.say(c, f.EHLO) {
				return
			}
			continue
		case strings.HasPrefix(cmd, "MAIL"):
			rcpts = nil
			f.mu.Lock()
			f.mails++
			n := f.mails
			f.mu.Unlock()
			if reply = "250 2.1.0 ok\r\n"; f.Mail != nil && f.Mail(n) != "" {
				reply = f.Mail(n) + "\r\n"
			}
		case strings.HasPrefix(cmd, "RCPT"):
			f.mu.Lock()
			f.rcptLines = append(f.rcptLines, strings.TrimRight(line, "\r\n"))
			f.mu.Unlock()
			to := strings.Trim(strings.TrimPrefix(strings.Fields(line[8:])[0], ":"), "<>")
			reply = "250 2.1.5 ok\r\n"
			if f.Rcpt != nil && f.Rcpt(to) != "" {
				reply = f.Rcpt(to) + "\r\n"
			}
			if reply[0] == '2' {
				rcpts = append(rcpts, to)
			}
		case cmd == "DATA" && len(rcpts) == 0:
			reply = "554 5.5.1 no valid recipients\r\n" // as Postfix says to a pipelining client (RFC 2920 §3.1)
		case cmd == "DATA":
			if !f.say(c, f.DataGo) {
				return
			}
			if !f.data(c, r, rcpts) {
				return
			}
			continue
		case cmd == "QUIT":
			io.WriteString(c, "221 2.0.0 bye\r\n")
			return
		case cmd == "RSET", cmd == "NOOP":
			reply = "250 2.0.0 ok\r\n"
		default:
			reply = "502 5.5.1 not here\r\n"
		}
		if strings.HasPrefix(reply, "close") {
			return
		}
		if _, err := io.WriteString(c, reply); err != nil || strings.HasPrefix(reply, "421") {
			return
		}
	}
}

// data reads the message up to the dot and answers by f.Dot.
func (f *fake) data(c net.Conn, r *bufio.Reader, rcpts []string) bool {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return false
		}
		if line == ".\r\n" {
			break
		}
		b.WriteString(line)
	}
	f.mu.Lock()
	f.dots++
	n := f.dots
	f.mu.Unlock()
	reply := ""
	if f.Dot != nil {
		reply = f.Dot(n)
	}
	if !strings.HasPrefix(reply, "4") && !strings.HasPrefix(reply, "5") {
		f.mu.Lock()
		f.got = append(f.got, fakeMsg{rcpts: rcpts, data: b.String()})
		f.mu.Unlock()
	}
	switch {
	case reply == "close":
		return false
	case reply == "hang":
		<-f.stop
		return false
	case reply == "":
		reply = "250 2.0.0 queued"
	}
	_, err := io.WriteString(c, reply+"\r\n")
	return err == nil && !strings.HasPrefix(reply, "421")
}

// copies counts the messages received whose data contains s.
func (f *fake) copies(s string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.got {
		if strings.Contains(m.data, s) {
			n++
		}
	}
	return n
}

func (f *fake) counts() (sessions, mails, dots int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions, f.mails, f.dots
}

func (f *fake) rcptsOf(i int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.got) {
		return nil
	}
	return f.got[i].rcpts
}
