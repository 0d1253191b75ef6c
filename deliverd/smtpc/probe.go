package smtpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
)

// ProbeStep is what one step of Probe saw.
type ProbeStep struct {
	// Name is the step: "connect", "tls" (the handshake, for smtps and
	// after STARTTLS), "greeting", "EHLO" or "LHLO", "STARTTLS", "AUTH",
	// "MAIL", "RCPT", "RSET", "QUIT".
	Name string
	// Code, Enhanced and Text are the server's reply, when there was one
	// (Text with the password masked, should the server echo it).
	Code     int
	Enhanced string
	Text     string
	// Extensions lists the EHLO/LHLO keywords with their parameters.
	Extensions []string
	// Mechanism is the SASL mechanism of an AUTH step ("PLAIN", "LOGIN").
	Mechanism string
	// TLS is the session's state after a handshake ("tls" steps).
	TLS *tls.ConnectionState
	// Skipped says why the step was not run where it could have been
	// (STARTTLS not offered in opportunistic mode).
	Skipped string
	// Err is nil when the step passed. A refused reply is an *Error with
	// the code; ErrNoStartTLS, ErrInsecureAuth, ErrNoAuthMech and the TLS
	// handshake's own error come through errors.Is/As.
	Err error
}

// Probe runs, against t, the opening Dial runs and a transaction without
// DATA: connect, greeting, EHLO (LHLO for LMTP), STARTTLS as o.StartTLS
// says (the certificate verified), AUTH if o.Username is set, MAIL
// FROM:<from>, RCPT TO:<rcpt>, RSET and QUIT. It is the operator's telnet
// session (KB 885685, "Troubleshoot the SMTP delivery process"): nothing
// is ever sent after RCPT but RSET and QUIT, so no message is delivered.
// Each step is passed to report as it ends; Probe stops at the first
// failing one (after a failure past the greeting it still sends QUIT) and
// reports whether every step passed. Cancelling ctx ends the session.
func Probe(ctx context.Context, t Target, o Options, from, rcpt string, report func(ProbeStep)) bool {
	o, err := o.withDefaults()
	if err == nil {
		err = t.check()
	}
	if err != nil {
		report(ProbeStep{Name: "connect", Err: err})
		return false
	}
	raw, err := dialRaw(ctx, t, o.Connect)
	if err != nil {
		report(ProbeStep{Name: "connect", Err: err})
		return false
	}
	report(ProbeStep{Name: "connect", Text: raw.RemoteAddr().String()})
	p := &prober{w: newWire(raw, o.Command), o: o, t: t, from: from, rcpt: rcpt, report: report}
	p.r = textproto.NewReader(bufio.NewReader(p.w))
	p.helo = o.Helo
	if p.helo == "" {
		p.helo = defaultHelo(raw.LocalAddr())
	}
	stop := context.AfterFunc(ctx, p.w.kill)
	defer stop()
	defer p.w.kill()
	return p.run(ctx)
}

type prober struct {
	w      *wire
	r      *textproto.Reader
	o      Options
	t      Target
	helo   string
	from   string
	rcpt   string
	exts   []string
	report func(ProbeStep)
	open   bool // past the greeting: a QUIT is owed
}

func (p *prober) run(ctx context.Context) bool {
	if p.t.Scheme == "smtps" && !p.handshake(ctx) {
		return false
	}
	if !p.greeting() || !p.hello() || !p.startTLS(ctx) || !p.auth() {
		return p.quit(false)
	}
	for _, s := range []struct{ name, cmd string }{
		{"MAIL", "MAIL FROM:<" + p.cmdFrom() + ">"},
		{"RCPT", "RCPT TO:<" + p.cmdRcpt() + ">"},
		{"RSET", "RSET"},
	} {
		if _, ok := p.command(s.name, s.cmd, 2, p.timeout(s.name)); !ok {
			return p.quit(false)
		}
	}
	return p.quit(true)
}

// cmdFrom and cmdRcpt keep line breaks out of the commands.
func (p *prober) cmdFrom() string { return strings.NewReplacer("\r", "", "\n", "").Replace(p.from) }
func (p *prober) cmdRcpt() string { return strings.NewReplacer("\r", "", "\n", "").Replace(p.rcpt) }

func (p *prober) timeout(step string) time.Duration {
	switch step {
	case "greeting":
		return p.o.Greeting
	case "MAIL":
		return p.o.Mail
	case "RCPT":
		return p.o.Rcpt
	}
	return p.o.Command
}

// command sends cmd (none if "") and reads the reply; ok when its first
// digit is want. The step is reported, with the reply.
func (p *prober) command(name, cmd string, want int, timeout time.Duration) (ProbeStep, bool) {
	st := p.exchange(name, cmd, timeout)
	if st.Err == nil && st.Code/100 != want {
		st.Err = &Error{Op: name, Code: st.Code, Enhanced: st.Enhanced, Err: fmt.Errorf("%d %s", st.Code, st.Text)}
	}
	p.report(st)
	return st, st.Err == nil
}

// exchange is one command and its reply, the reply not judged.
func (p *prober) exchange(name, cmd string, timeout time.Duration) ProbeStep {
	st := ProbeStep{Name: name}
	if err := p.w.SetDeadline(time.Now().Add(timeout)); err != nil {
		st.Err = &Error{Op: name, Err: err}
		return st
	}
	defer p.w.SetDeadline(time.Time{}) //nolint:errcheck // a failure shows on the next I/O
	if cmd != "" {
		if _, err := p.w.Write([]byte(cmd + "\r\n")); err != nil {
			p.w.kill()
			st.Err = &Error{Op: name, Err: err}
			return st
		}
	}
	code, msg, err := p.r.ReadResponse(0)
	if err != nil {
		p.w.kill() // no reply to read after a broken one
		st.Err = &Error{Op: name, Err: err}
		return st
	}
	if code == 421 {
		p.w.kill() // the server closes the channel (RFC 5321 §3.8)
	}
	s := replyToStatus(code, hideSecrets(p.o, msg))
	st.Code, st.Enhanced, st.Text = code, s.Enhanced, s.Msg
	return st
}

func (p *prober) greeting() bool {
	_, ok := p.command("greeting", "", 2, p.o.Greeting)
	p.open = true
	return ok
}

func (p *prober) hello() bool {
	verb := "EHLO"
	if p.t.lmtp() {
		verb = "LHLO"
	}
	st := p.exchange(verb, verb+" "+p.helo, p.o.Command)
	if st.Err == nil && st.Code != 250 {
		st.Err = &Error{Op: verb, Code: st.Code, Enhanced: st.Enhanced, Err: fmt.Errorf("%d %s", st.Code, st.Text)}
	}
	if st.Err == nil {
		lines := strings.Split(st.Text, "\n")
		st.Extensions = lines[1:]
		p.exts = st.Extensions
	}
	p.report(st)
	return st.Err == nil
}

// offered reports whether the last EHLO listed keyword.
func (p *prober) offered(keyword string) (params string, ok bool) {
	for _, e := range p.exts {
		k, rest, _ := strings.Cut(e, " ")
		if strings.EqualFold(k, keyword) {
			return rest, true
		}
	}
	return "", false
}

// startTLS runs STARTTLS where Dial would, and EHLO again after it
// (RFC 3207 §4.2).
func (p *prober) startTLS(ctx context.Context) bool {
	mode := p.o.StartTLS
	if p.t.Scheme == "smtps" || mode == StartTLSNone || mode == StartTLSOpportunistic && p.t.network() != "tcp" {
		return true
	}
	if _, ok := p.offered("STARTTLS"); !ok {
		if mode == StartTLSRequired {
			p.report(ProbeStep{Name: "STARTTLS", Err: &Error{Op: "STARTTLS", Err: ErrNoStartTLS}})
			return false
		}
		p.report(ProbeStep{Name: "STARTTLS", Skipped: "not offered by the server; opportunistic: the session goes on in clear text"})
		return true
	}
	st := p.exchange("STARTTLS", "STARTTLS", p.o.Command)
	if st.Err == nil && st.Code/100 != 2 {
		if mode == StartTLSOpportunistic && st.Code != 421 {
			// Dial goes on in clear text here too (withoutTLS).
			st.Skipped = fmt.Sprintf("refused by the server (%d %s); opportunistic: the session goes on in clear text",
				st.Code, strings.TrimSpace(st.Enhanced+" "+st.Text))
			p.report(st)
			return true
		}
		st.Err = &Error{Op: "STARTTLS", Code: st.Code, Enhanced: st.Enhanced, Err: fmt.Errorf("%d %s", st.Code, st.Text)}
	}
	p.report(st)
	if st.Err != nil {
		return false
	}
	if p.r.R.Buffered() > 0 || p.w.pending() {
		p.report(ProbeStep{Name: "tls", Err: &Error{Op: "STARTTLS", Err: ErrInjection}})
		return false
	}
	return p.handshake(ctx) && p.hello()
}

// handshake runs TLS over the connection, certificate verified by
// o.TLSConfig (the system's roots by default).
func (p *prober) handshake(ctx context.Context) bool {
	if err := p.w.upgrade(ctx, p.o.tlsConfig(p.t), p.o.Command); err != nil {
		p.w.kill() // half a handshake: no QUIT can follow
		p.report(ProbeStep{Name: "tls", Err: &Error{Op: "tls", Err: err}})
		return false
	}
	st, _ := p.w.Conn.(*tls.Conn)
	cs := st.ConnectionState()
	p.r = textproto.NewReader(bufio.NewReader(p.w))
	p.report(ProbeStep{Name: "tls", TLS: &cs})
	return true
}

// auth runs AUTH PLAIN or LOGIN as Dial does, but step by step so each
// reply is reported (with the password masked).
func (p *prober) auth() bool {
	if p.o.Username == "" {
		return true
	}
	fail := func(err error) bool {
		p.report(ProbeStep{Name: "AUTH", Err: &Error{Op: "AUTH", Err: err}})
		return false
	}
	if !p.w.tls() && !p.w.loopback() {
		return fail(ErrInsecureAuth)
	}
	mechs, _ := p.offered("AUTH")
	var c sasl.Client
	switch m := " " + strings.ToUpper(mechs) + " "; {
	case strings.Contains(m, " PLAIN "):
		c = sasl.NewPlainClient("", p.o.Username, p.o.Password)
	case strings.Contains(m, " LOGIN "):
		c = sasl.NewLoginClient(p.o.Username, p.o.Password)
	default:
		return fail(ErrNoAuthMech)
	}
	return p.saslExchange(c)
}

// saslExchange is RFC 4954 §4: AUTH with the initial response, then a
// 334 challenge and a response until the verdict.
func (p *prober) saslExchange(c sasl.Client) bool {
	mech, ir, err := c.Start()
	if err != nil {
		return p.fail("AUTH", err)
	}
	cmd := "AUTH " + mech
	if ir != nil {
		cmd += " " + encode(ir)
	}
	for range 5 {
		st := p.exchange("AUTH", cmd, p.o.Command)
		if st.Err != nil || st.Code != 334 {
			if st.Err == nil && st.Code/100 != 2 {
				st.Err = &Error{Op: "AUTH", Code: st.Code, Enhanced: st.Enhanced, Err: fmt.Errorf("%d %s", st.Code, st.Text)}
			}
			st.Mechanism = mech
			p.report(st)
			return st.Err == nil
		}
		chal, err := base64.StdEncoding.DecodeString(st.Text)
		if err != nil {
			return p.fail("AUTH", fmt.Errorf("334 challenge is not base64: %w", err))
		}
		resp, err := c.Next(chal)
		if err != nil {
			return p.fail("AUTH", err)
		}
		cmd = encode(resp)
	}
	return p.fail("AUTH", errors.New("the server asked for more than 5 AUTH exchanges"))
}

func encode(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

func (p *prober) fail(step string, err error) bool {
	p.report(ProbeStep{Name: step, Err: &Error{Op: step, Err: err}})
	return false
}

// quit sends QUIT when a session is open and still usable. ok is the
// verdict so far; a failed QUIT after good steps fails the probe.
func (p *prober) quit(ok bool) bool {
	if !p.open || p.w.broken.Load() {
		return ok
	}
	if !ok {
		// A courtesy QUIT after a failure; its outcome changes nothing.
		_ = p.exchange("QUIT", "QUIT", min(p.o.Command, 10*time.Second))
		return false
	}
	_, ok = p.command("QUIT", "QUIT", 2, p.o.Command)
	return ok
}
