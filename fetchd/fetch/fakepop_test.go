package fetch

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"example.org/popspool/shared/config"
)

// fakePOP is a small scripted POP3 server for what pop3srv does not do:
// chosen UIDLs ("/", "..", 70 octets), extra CAPA lines (LOGIN-DELAY,
// EXPIRE), and hostile replies. It accepts any password. hook, if set, sees
// each command first and may answer it itself (raw bytes, CRLFs included),
// hang up, or stall.
type fakePOP struct {
	t    *testing.T
	ln   net.Listener
	capa []string // added to USER UIDL TOP PIPELINING RESP-CODES
	hook func(conn int, cmd string) (reply string, act hookAction)
	// echo makes every login reply quote what the client sent (a hostile
	// server's echo of the password, the digest or the SASL payload).
	echo bool

	mu     sync.Mutex
	msgs   []fakeMsg
	conns  int
	active int // connections open now
	peak   int // most connections open at once
	logins []time.Time
	wg     sync.WaitGroup
}

type fakeMsg struct {
	uid  string
	data []byte // wire form, CRLF lines, not yet dot-stuffed
}

type hookAction int

const (
	hookPass    hookAction = iota // handle the command normally
	hookReply                     // send reply instead
	hookHangUp                    // send reply (if any), then close
	hookStall                     // send reply (if any), then read nothing until the client gives up
	hookFlood                     // send reply, then message lines for ever (a message that never ends)
	hookTrickle                   // send reply, then a listing line every 20 ms for ever
)

func startFakePOP(t *testing.T, msgs ...fakeMsg) *fakePOP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &fakePOP{t: t, ln: ln, msgs: msgs}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *fakePOP) addr() string { return p.ln.Addr().String() }

// left returns the UIDs still in the maildrop.
func (p *fakePOP) left() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, m := range p.msgs {
		out = append(out, m.uid)
	}
	return out
}

func (p *fakePOP) ended() {
	p.mu.Lock()
	p.active--
	p.mu.Unlock()
}

// peakConns returns the most connections that were open at once.
func (p *fakePOP) peakConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

func (p *fakePOP) loginTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.logins...)
}

func (p *fakePOP) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns++
		n := p.conns
		p.active++
		p.peak = max(p.peak, p.active)
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer c.Close()
			p.serve(n, c)
		}()
	}
}

// fakeSession is one connection's state: a snapshot of the maildrop and
// the DELE marks (RFC 1939 §6: applied at QUIT only).
type fakeSession struct {
	msgs    []fakeMsg
	deleted map[int]bool
	login   int // AUTH LOGIN responses still to come
}

func (p *fakePOP) serve(n int, c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	defer w.Flush()
	defer p.ended() // before the last reply goes out: a client waiting for it sees the count down
	w.WriteString("+OK fake POP3 ready <1.2@fake>\r\n")
	w.Flush()
	p.mu.Lock()
	s := &fakeSession{msgs: append([]fakeMsg(nil), p.msgs...), deleted: map[int]bool{}}
	p.mu.Unlock()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(line, "\r\n")
		if p.hook != nil {
			reply, act := p.hook(n, cmd)
			if act != hookPass {
				w.WriteString(reply)
				w.Flush()
				switch act {
				case hookHangUp:
					return
				case hookStall:
					io.Copy(io.Discard, c) // until the client gives up and hangs up
					return
				case hookFlood:
					flood(c)
					return
				case hookTrickle:
					trickle(c)
					return
				}
				continue
			}
		}
		if !p.command(s, cmd, w) {
			return
		}
		if r.Buffered() == 0 {
			w.Flush()
		}
	}
}

// command answers one command; false ends the session.
func (p *fakePOP) command(s *fakeSession, cmd string, w *bufio.Writer) bool {
	if s.login > 0 {
		p.loginStep(s, cmd, w)
		return true
	}
	verb, arg, _ := strings.Cut(cmd, " ")
	num, _ := strconv.Atoi(strings.Fields(arg + " x")[0])
	switch strings.ToUpper(verb) {
	case "APOP":
		p.loggedIn(w, arg)
	case "AUTH":
		p.auth(s, arg, w)
	case "CAPA":
		w.WriteString("+OK\r\nUSER\r\nUIDL\r\nTOP\r\nPIPELINING\r\nRESP-CODES\r\n")
		for _, l := range p.capa {
			w.WriteString(l + "\r\n")
		}
		w.WriteString(".\r\n")
	case "USER", "NOOP":
		w.WriteString("+OK\r\n")
	case "PASS":
		p.loggedIn(w, arg)
	case "STAT":
		fmt.Fprintf(w, "+OK %d %d\r\n", len(s.msgs), 0)
	case "LIST", "UIDL":
		w.WriteString("+OK\r\n")
		for i, m := range s.msgs {
			if s.deleted[i+1] {
				continue
			}
			if verb == "LIST" {
				fmt.Fprintf(w, "%d %d\r\n", i+1, len(m.data))
			} else {
				fmt.Fprintf(w, "%d %s\r\n", i+1, m.uid)
			}
		}
		w.WriteString(".\r\n")
	case "RETR", "TOP":
		if num < 1 || num > len(s.msgs) || s.deleted[num] {
			w.WriteString("-ERR no such message\r\n")
			return true
		}
		data := s.msgs[num-1].data
		if verb == "TOP" {
			if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
				data = data[:i+4]
			}
		}
		w.WriteString("+OK\r\n")
		w.Write(stuff(data))
		w.WriteString(".\r\n")
	case "DELE":
		if num < 1 || num > len(s.msgs) || s.deleted[num] {
			w.WriteString("-ERR no such message\r\n")
			return true
		}
		s.deleted[num] = true
		w.WriteString("+OK\r\n")
	case "RSET":
		s.deleted = map[int]bool{}
		w.WriteString("+OK\r\n")
	case "QUIT":
		p.update(s)
		w.WriteString("+OK bye\r\n")
		return false
	default:
		w.WriteString("-ERR unknown command\r\n")
	}
	return true
}

// loggedIn accepts a login; sent is what the client sent, echoed back
// (as it is, and decoded if it is base64) with p.echo.
func (p *fakePOP) loggedIn(w *bufio.Writer, sent string) {
	p.mu.Lock()
	p.logins = append(p.logins, time.Now())
	p.mu.Unlock()
	if !p.echo {
		w.WriteString("+OK logged in\r\n")
		return
	}
	echo := sent
	if b, err := base64.StdEncoding.DecodeString(sent); err == nil {
		echo += " = " + string(b)
	}
	fmt.Fprintf(w, "+OK logged in with %s\r\n", strings.NewReplacer("\r", "", "\n", "").Replace(echo))
}

// auth answers AUTH (RFC 5034): PLAIN, XOAUTH2 and OAUTHBEARER with an
// initial response, LOGIN with its two challenges.
func (p *fakePOP) auth(s *fakeSession, arg string, w *bufio.Writer) {
	mech, ir, _ := strings.Cut(arg, " ")
	switch {
	case strings.EqualFold(mech, "LOGIN") && ir == "":
		s.login = 2
		w.WriteString("+ VXNlcm5hbWU6\r\n") // "Username:"
	case ir != "":
		p.loggedIn(w, ir)
	default:
		w.WriteString("-ERR [AUTH] mechanism not supported by the fake\r\n")
	}
}

// loginStep takes one AUTH LOGIN response.
func (p *fakePOP) loginStep(s *fakeSession, resp string, w *bufio.Writer) {
	s.login--
	if s.login == 1 {
		w.WriteString("+ UGFzc3dvcmQ6\r\n") // "Password:"
		return
	}
	p.loggedIn(w, resp)
}

// update removes the messages marked deleted (RFC 1939 §6).
func (p *fakePOP) update(s *fakeSession) {
	gone := map[string]bool{}
	for i, m := range s.msgs {
		if s.deleted[i+1] {
			gone[m.uid] = true
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	kept := p.msgs[:0]
	for _, m := range p.msgs {
		if !gone[m.uid] {
			kept = append(kept, m)
		}
	}
	p.msgs = kept
}

// stuff byte-stuffs a message (RFC 1939 §3) and ends its last line.
func stuff(data []byte) []byte {
	if !bytes.HasSuffix(data, []byte("\r\n")) {
		data = append(append([]byte(nil), data...), '\r', '\n')
	}
	var b bytes.Buffer
	for _, line := range bytes.SplitAfter(data, []byte("\r\n")) {
		if len(line) > 0 && line[0] == '.' {
			b.WriteByte('.')
		}
		b.Write(line)
	}
	return b.Bytes()
}

// fakeRig is a rig against a fakePOP.
func newFakeRig(t *testing.T, msgs ...fakeMsg) (*rig, *fakePOP) {
	t.Helper()
	p := startFakePOP(t, msgs...)
	r := &rig{want: map[string][]byte{}}
	for _, m := range msgs {
		r.want[m.uid] = stuffless(m.data)
	}
	r.setup(t, t.TempDir(), configAccount(p.addr()), "pw")
	return r, p
}

// stuffless is what a client stores: the message with its last line ended.
func stuffless(data []byte) []byte {
	if !bytes.HasSuffix(data, []byte("\r\n")) {
		return append(append([]byte(nil), data...), '\r', '\n')
	}
	return data
}

func fakeMessage(uid, subject string) fakeMsg {
	return fakeMsg{uid: uid, data: []byte("Subject: " + subject + "\r\nFrom: a@example.net\r\n\r\nbody of " + subject + "\r\n.dot line\r\n")}
}

// configAccount is a clear-text account for a test server at addr.
func configAccount(addr string) config.Account {
	return config.Account{Server: addr, TLS: "none", AllowPlaintext: true, Username: "u"}
}

// trickle writes a listing line every 20 ms until the client hangs up:
// each read is well inside any time-out, the listing never ends.
func trickle(c net.Conn) {
	for n := 1; ; n++ {
		if _, err := fmt.Fprintf(c, "%d uid%d\r\n", n, n); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flood writes message lines until the client hangs up.
func flood(c net.Conn) {
	line := bytes.Repeat([]byte("never ending "), 80)
	line = append(line, '\r', '\n')
	for {
		if _, err := c.Write(line); err != nil {
			return
		}
	}
}
