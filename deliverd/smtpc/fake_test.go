package smtpc

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// A scripted SMTP server for what go-smtp's server cannot do: odd replies,
// delays, replies split across TCP segments, hang-ups at chosen moments.

// step is one exchange of a script.
type step struct {
	want  string        // expected command prefix; "" none (greeting); "." a body up to the dot; "*" one body line
	reply []string      // written in order, with pause before each part after the first
	pause time.Duration //
	close bool          // hang up instead of replying
	hang  bool          // neither reply nor hang up until the test ends
}

type fake struct {
	t      *testing.T
	ln     net.Listener
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	cmds   []string // command lines received
	bodies []string // complete bodies received (dot-stuffed form)
}

func newFake(t *testing.T, script ...step) *fake {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{t: t, ln: ln, stop: make(chan struct{}), done: make(chan struct{})}
	go f.serve(script)
	t.Cleanup(func() { close(f.stop); ln.Close(); <-f.done })
	return f
}

func (f *fake) target() Target { return Target{Scheme: "smtp", Addr: f.ln.Addr().String()} }

func (f *fake) serve(script []step) {
	defer close(f.done)
	conn, err := f.ln.Accept()
	if err != nil {
		return
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	for _, s := range script {
		if !f.receive(r, s.want) {
			return
		}
		switch {
		case s.close:
			return
		case s.hang:
			<-f.stop
			return
		}
		for i, part := range s.reply {
			if i > 0 {
				time.Sleep(s.pause)
			}
			if _, err := io.WriteString(conn, part); err != nil {
				return
			}
		}
	}
	f.epilogue(r, conn)
}

// receive reads what step s expects; false when the client went away.
func (f *fake) receive(r *bufio.Reader, want string) bool {
	if want == "" {
		return true
	}
	var body strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return false
		}
		switch want {
		case "*":
			return true
		case ".":
			if line == ".\r\n" {
				f.record(nil, body.String())
				return true
			}
			body.WriteString(line)
			continue
		}
		f.record([]string{strings.TrimRight(line, "\r\n")}, "")
		if !strings.HasPrefix(strings.ToUpper(line), want) {
			f.t.Errorf("fake server: got %q, want %q", line, want)
		}
		return true
	}
}

// epilogue answers QUIT; anything else after the script is an error
// (e.g. a second DATA: a duplicate).
func (f *fake) epilogue(r *bufio.Reader, conn net.Conn) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f.record([]string{strings.TrimRight(line, "\r\n")}, "")
		if strings.HasPrefix(strings.ToUpper(line), "QUIT") {
			io.WriteString(conn, "221 bye\r\n")
			return
		}
		f.t.Errorf("fake server: unexpected %q after the script", line)
		io.WriteString(conn, "503 out of script\r\n")
	}
}

func (f *fake) record(cmds []string, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, cmds...)
	if body != "" {
		f.bodies = append(f.bodies, body)
	}
}

func (f *fake) seen() ([]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...), append([]string(nil), f.bodies...)
}

func count(cmds []string, prefix string) int {
	n := 0
	for _, c := range cmds {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func r(s ...string) []string { return s }

// transaction is the usual script from MAIL to the final reply.
func transaction(data step, final step) []step {
	return []step{
		{want: "MAIL FROM:", reply: r("250 ok\r\n")},
		{want: "RCPT TO:", reply: r("250 ok\r\n")},
		data,
		final,
	}
}

func fakeDial(t *testing.T, f *fake, o Options) *Conn {
	t.Helper()
	if o.Timeouts == (Timeouts{}) {
		o.Timeouts = quick
	}
	c, err := Dial(context.Background(), f.target(), o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Article 001: a greeting naming a non-FQDN host must be accepted. Runs
// with the default opportunistic STARTTLS, so smtpc reads the greeting.
func TestGreetingNonFQDN(t *testing.T) {
	script := []step{
		{reply: r("220 exchange2000\r\n")},
		{want: "EHLO ", reply: r("250-exchange2000 Hello\r\n250 SIZE\r\n")},
		{want: "EHLO ", reply: r("250-exchange2000 Hello\r\n250 SIZE\r\n")}, // no STARTTLS: go-smtp's EHLO
	}
	script = append(script, transaction(
		step{want: "DATA", reply: r("354 go on\r\n")},
		step{want: ".", reply: r("250 queued\r\n")})...)
	f := newFake(t, script...)
	c := fakeDial(t, f, Options{})
	res := send(t, c, "a@example.org", []string{"b@example.org"}, "hi\r\n")
	wantStatus(t, res.Rcpts[0], 250, "")
}

// Article 002: "354-Line 1", 300 ms, "354 Send message": one delivery.
func TestMultiline354WithDelay(t *testing.T) {
	script := append([]step{
		{reply: r("220 mx.test ESMTP\r\n")},
		{want: "EHLO ", reply: r("250 mx.test\r\n")},
	}, transaction(
		step{want: "DATA", reply: r("354-Line 1\r\n", "354 Send message\r\n"), pause: 300 * time.Millisecond},
		step{want: ".", reply: r("250 2.0.0 queued as X\r\n")})...)
	f := newFake(t, script...)
	c := fakeDial(t, f, Options{StartTLS: StartTLSNone})
	res := send(t, c, "a@example.org", []string{"b@example.org"}, testBody)
	wantStatus(t, res.Rcpts[0], 250, "2.0.0")
	if res.Rcpts[0].Msg != "queued as X" {
		t.Errorf("Msg %q", res.Rcpts[0].Msg)
	}
	c.Close()
	cmds, bodies := f.seen()
	if count(cmds, "DATA") != 1 || len(bodies) != 1 {
		t.Fatalf("DATA %d times, %d bodies; want 1 and 1: %q", count(cmds, "DATA"), len(bodies), cmds)
	}
}

// RFC 5321 §4.2: a reply code without text, also split across segments
// and as the last line of a multi-line reply.
func TestBareReplyCodes(t *testing.T) {
	script := append([]step{
		{reply: r("220\r\n")},
		{want: "EHLO ", reply: r("250-mx.test\r\n250-8BITMIME\r\n", "250\r\n"), pause: 50 * time.Millisecond},
		{want: "MAIL FROM:", reply: r("25", "0\r\n"), pause: 50 * time.Millisecond},
		{want: "RCPT TO:", reply: r("250\r\n")},
	}, step{want: "DATA", reply: r("354\r\n")}, step{want: ".", reply: r("250\r\n")})
	f := newFake(t, script...)
	c := fakeDial(t, f, Options{StartTLS: StartTLSNone})
	res := send(t, c, "a@example.org", []string{"b@example.org"}, testBody)
	wantStatus(t, res.Rcpts[0], 250, "")
	if cmds, _ := f.seen(); !strings.Contains(cmds[1], "BODY=8BITMIME") {
		t.Errorf("MAIL %q lacks BODY=8BITMIME", cmds[1])
	}
}

// RFC 5321 §2.4: EHLO keywords are case-insensitive.
func TestLowercaseEHLOKeywords(t *testing.T) {
	ehlo := "250-mx.test greets you\r\n250-8bitmime\r\n250-size 1000\r\n250-smtputf8\r\n250 pipelining\r\n"
	script := append([]step{
		{reply: r("220 mx.test ESMTP\r\n")},
		{want: "EHLO ", reply: r(ehlo)},
	}, transaction(step{want: "DATA", reply: r("354 go\r\n")}, step{want: ".", reply: r("250 ok\r\n")})...)
	f := newFake(t, script...)
	c := fakeDial(t, f, Options{StartTLS: StartTLSNone})
	res := send(t, c, "jörg@example.org", []string{"b@example.org"}, "hi\r\n")
	wantStatus(t, res.Rcpts[0], 250, "")
	cmds, _ := f.seen()
	for _, p := range []string{"BODY=8BITMIME", "SIZE=4", "SMTPUTF8"} {
		if !strings.Contains(cmds[1], p) {
			t.Errorf("MAIL %q lacks %s", cmds[1], p)
		}
	}
	res = send(t, c, "a@example.org", []string{"b@example.org"}, strings.Repeat("x", 2000))
	wantStatus(t, res.Rcpts[0], 552, "5.3.4") // "size 1000" understood; no MAIL sent
}

func TestClosedAfterFinalDot(t *testing.T) {
	f := newFake(t, append(greeting(), transaction(
		step{want: "DATA", reply: r("354 go\r\n")}, step{want: ".", close: true})...)...)
	c := fakeDial(t, f, Options{StartTLS: StartTLSNone})
	res, err := c.Send(context.Background(), "a@example.org", []string{"b@example.org"}, strings.NewReader(testBody), 0)
	e := wantError(t, err, "dot", true)
	if !e.Temporary() || !c.Broken() || res.Rcpts[0].Code != 0 {
		t.Errorf("Temporary %v, Broken %v, status %+v", e.Temporary(), c.Broken(), res.Rcpts[0])
	}
}

func TestClosedMidData(t *testing.T) {
	f := newFake(t, append(greeting(), transaction(
		step{want: "DATA", reply: r("354 go\r\n")}, step{want: "*", close: true})...)...)
	c := fakeDial(t, f, Options{StartTLS: StartTLSNone})
	_, err := c.Send(context.Background(), "a@example.org", []string{"b@example.org"}, endless(), 0)
	wantError(t, err, "DATA", false)
}

func TestBodyReadErrorSendsNoDot(t *testing.T) {
	f := newFake(t, append(greeting(), transaction(
		step{want: "DATA", reply: r("354 go\r\n")}, step{want: ".", reply: r("250 ok\r\n")})...)...)
	c := fakeDial(t, f, Options{StartTLS: StartTLSNone})
	body := io.MultiReader(strings.NewReader("Subject: x\r\n\r\n"), failing{})
	_, err := c.Send(context.Background(), "a@example.org", []string{"b@example.org"}, body, 0)
	wantError(t, err, "body", false)
	c.Close()
	<-waitDone(f)
	if _, bodies := f.seen(); len(bodies) != 0 {
		t.Fatalf("server got a complete message after a body read error: %q", bodies)
	}
}

func TestFinalDotTimeout(t *testing.T) {
	f := newFake(t, append(greeting(), transaction(
		step{want: "DATA", reply: r("354 go\r\n")}, step{want: ".", hang: true})...)...)
	o := Options{StartTLS: StartTLSNone, Timeouts: quick}
	o.FinalDot = 300 * time.Millisecond
	c := fakeDial(t, f, o)
	start := time.Now()
	_, err := c.Send(context.Background(), "a@example.org", []string{"b@example.org"}, strings.NewReader(testBody), 0)
	e := wantError(t, err, "dot", true)
	if d := time.Since(start); !e.Timeout() || d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("Timeout() %v after %v, want a timeout after ~300ms", e.Timeout(), d)
	}
}

func TestDataBlockTimeout(t *testing.T) {
	f := newFake(t, append(greeting(), transaction(
		step{want: "DATA", reply: r("354 go\r\n")}, step{hang: true})...)...)
	o := Options{StartTLS: StartTLSNone, Timeouts: quick}
	o.DataBlock = 300 * time.Millisecond
	c := fakeDial(t, f, o)
	_, err := c.Send(context.Background(), "a@example.org", []string{"b@example.org"}, endless(), 0)
	if e := wantError(t, err, "DATA", false); !e.Timeout() {
		t.Errorf("want a write timeout, got %v", err)
	}
}

func TestCancelClosesConnection(t *testing.T) {
	f := newFake(t, append(greeting(), transaction(
		step{want: "DATA", reply: r("354 go\r\n")}, step{want: ".", hang: true})...)...)
	c := fakeDial(t, f, Options{StartTLS: StartTLSNone})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Send(ctx, "a@example.org", []string{"b@example.org"}, strings.NewReader(testBody), 0)
	wantError(t, err, "dot", true)
	if !errors.Is(err, context.DeadlineExceeded) || !c.Broken() {
		t.Errorf("err %v (want context.DeadlineExceeded), Broken %v", err, c.Broken())
	}
}

func TestStartTLSRequiredNotOffered(t *testing.T) {
	f := newFake(t, step{reply: r("220 mx.test ESMTP\r\n")},
		step{want: "EHLO ", reply: r("250-mx.test\r\n250 SIZE 1000\r\n")})
	_, err := Dial(context.Background(), f.target(), Options{StartTLS: StartTLSRequired, Timeouts: quick})
	if !errors.Is(err, ErrNoStartTLS) {
		t.Fatalf("Dial: %v, want ErrNoStartTLS", err)
	}
	<-waitDone(f)
	if cmds, _ := f.seen(); count(cmds, "MAIL") != 0 || count(cmds, "QUIT") != 1 {
		t.Errorf("commands %q: want QUIT and no MAIL", cmds)
	}
}

func greeting() []step {
	return []step{{reply: r("220 mx.test ESMTP\r\n")}, {want: "EHLO ", reply: r("250 mx.test\r\n")}}
}

func wantError(t *testing.T, err error, op string, afterDot bool) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if e.Op != op || e.AfterDot != afterDot {
		t.Fatalf("err = %v: Op %q AfterDot %v, want %q %v", err, e.Op, e.AfterDot, op, afterDot)
	}
	return e
}

// waitDone waits for the fake server's connection to end.
func waitDone(f *fake) <-chan struct{} { return f.done }

// endless is a body that never ends (until 256 MiB, a test failure bound).
func endless() io.Reader {
	return io.LimitReader(repeat{}, 256<<20)
}

type repeat struct{}

func (repeat) Read(p []byte) (int, error) {
	line := "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
	n := 0
	for n < len(p) {
		n += copy(p[n:], line)
	}
	return n, nil
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// Bytes after the 220 to STARTTLS would be read as if they came over TLS.
func TestStartTLSInjection(t *testing.T) {
	f := newFake(t, step{reply: r("220 mx.test ESMTP\r\n")},
		step{want: "EHLO ", reply: r("250-mx.test\r\n250 STARTTLS\r\n")},
		step{want: "STARTTLS", reply: r("220 go ahead\r\n250-injected\r\n")})
	_, err := Dial(context.Background(), f.target(), Options{Timeouts: quick})
	if !errors.Is(err, ErrInjection) {
		t.Fatalf("Dial: %v, want ErrInjection", err)
	}
}

// A server that echoes the password after AUTH, as it is or in base64,
// must not get it into the error: it is logged and kept in deferred/.
func TestAuthEchoMasked(t *testing.T) {
	const pw = "hunter2secret"
	plain := base64.StdEncoding.EncodeToString([]byte("\x00bob\x00" + pw))
	login := base64.StdEncoding.EncodeToString([]byte(pw))
	for mech, reply := range map[string][]step{
		"PLAIN": {{want: "AUTH PLAIN", reply: r("535 5.7.8 no " + pw + " (" + plain + ")\r\n")}},
		"LOGIN": { // go-sasl sends the user name with AUTH
			{want: "AUTH LOGIN YM9I", reply: r("334 UGFzc3dvcmQ6\r\n")},
			{want: strings.ToUpper(login), reply: r("535 5.7.8 " + login + " is " + pw + "\r\n")}},
	} {
		reply = append(reply, step{want: "*", reply: r("501 cancelled\r\n")}) // go-smtp's abort after a refusal
		t.Run(mech, func(t *testing.T) {
			script := append([]step{
				{reply: r("220 mx.test ESMTP\r\n")},
				{want: "EHLO ", reply: r("250-mx.test\r\n250 AUTH " + mech + "\r\n")},
			}, reply...)
			f := newFake(t, script...)
			_, err := Dial(context.Background(), f.target(), Options{StartTLS: StartTLSNone, Username: "bob", Password: pw})
			var e *Error
			if !errors.As(err, &e) || e.Op != "AUTH" || e.Code != 535 || e.Enhanced != "5.7.8" {
				t.Fatalf("Dial = %v, want a 535 5.7.8 AUTH error", err)
			}
			for _, leak := range []string{pw, plain, login} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q holds %q", err, leak)
				}
			}
			if !strings.Contains(err.Error(), "****") {
				t.Errorf("error %q does not show where the echo was masked", err)
			}
		})
	}
}
