package smtpc

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// ehloWith is a greeting and an EHLO reply offering exts, and PIPELINING
// if piped.
func ehloWith(piped bool, exts ...string) []step {
	if piped {
		exts = append(exts, "PIPELINING")
	}
	lines := append([]string{"mx.test"}, exts...)
	reply := ""
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		reply += "250" + sep + l + "\r\n"
	}
	return []step{{reply: r("220 mx.test ESMTP\r\n")}, {want: "EHLO ", reply: r(reply)}}
}

// With PIPELINING the client sends MAIL, every RCPT and DATA before it
// reads a reply: this server answers none of them until DATA has come.
// The next message on the connection needs no RSET and no new EHLO.
func TestPipeliningSendsCommandsTogether(t *testing.T) {
	together := []step{
		{want: "MAIL FROM:"}, {want: "RCPT TO:"}, {want: "RCPT TO:"},
		{want: "DATA", reply: r("250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n")},
		{want: ".", reply: r("250 2.0.0 queued\r\n")},
	}
	f := newFake(t, append(append(ehloWith(true), together...), together...)...)
	c := fakeDial(t, f, Options{StartTLS: StartTLSNone})
	for range 2 {
		res := send(t, c, "a@example.org", []string{"b@example.org", "c@example.org"}, testBody)
		wantStatus(t, res.Rcpts[0], 250, "2.0.0")
		wantStatus(t, res.Rcpts[1], 250, "2.0.0")
	}
	c.Close()
	<-waitDone(f)
	cmds, bodies := f.seen()
	if count(cmds, "EHLO") != 1 || count(cmds, "RSET") != 0 || count(cmds, "DATA") != 2 || len(bodies) != 2 {
		t.Errorf("commands %q, %d bodies: want one EHLO, no RSET, two DATA and two bodies", cmds, len(bodies))
	}
}

// Options.NoPipelining: the client waits for each reply even though the
// server offers PIPELINING, so after a refused MAIL it sends no RCPT.
func TestNoPipelining(t *testing.T) {
	f := newFake(t, append(ehloWith(true), no("MAIL", "550 5.7.1 not you"))...)
	c := fakeDial(t, f, Options{StartTLS: StartTLSNone, NoPipelining: true})
	res := send(t, c, "a@example.org", []string{"b@example.org"}, testBody)
	wantStatus(t, res.Rcpts[0], 550, "5.7.1")
	c.Close()
	<-waitDone(f)
	if cmds, _ := f.seen(); count(cmds, "RCPT") != 0 {
		t.Errorf("commands %q: RCPT sent after a refused MAIL", cmds)
	}
}

// pipeCase is one server behaviour, scripted for a client that waits for
// each reply (piped false) and for one that pipelines, which also sends
// the RCPTs and DATA after a refused MAIL and DATA after refused RCPTs.
type pipeCase struct {
	name     string
	script   func(piped bool) []step
	want     []int // each recipient's code
	errOp    string
	afterDot bool
	broken   bool
}

func ok250(want string) step    { return step{want: want, reply: r("250 2.1.0 ok\r\n")} }
func no(want, s string) step    { return step{want: want, reply: r(s + "\r\n")} }
func hangUpAt(want string) step { return step{want: want, close: true} }

// rehello is the EHLO go-smtp sends before QUIT after a RSET.
var rehello = step{want: "EHLO ", reply: r("250 mx.test\r\n")}

// only adds steps only the pipelining client's script has.
func only(piped bool, s ...step) []step {
	if piped {
		return s
	}
	return nil
}

func script(parts ...[]step) []step { return slices.Concat(parts...) }

var pipeCases = []pipeCase{
	{name: "accepted", want: []int{250, 250}, script: func(bool) []step {
		return script([]step{ok250("MAIL"), ok250("RCPT"), ok250("RCPT"), no("DATA", "354 go"), no(".", "250 2.0.0 queued")})
	}},
	{name: "MAIL refused", want: []int{550, 550}, script: func(p bool) []step {
		return script([]step{no("MAIL", "550 5.7.1 not you")}, only(p, no("RCPT", "503 5.5.1 no MAIL"), no("RCPT", "503 5.5.1 no MAIL"), no("DATA", "503 5.5.1 no MAIL")))
	}},
	{name: "MAIL 421", want: []int{421, 421}, broken: true, script: func(bool) []step {
		return []step{no("MAIL", "421 4.3.2 going down"), hangUpAt("RCPT")}
	}},
	{name: "one RCPT refused", want: []int{550, 250}, script: func(bool) []step {
		return []step{ok250("MAIL"), no("RCPT", "550 5.1.1 unknown"), ok250("RCPT"), no("DATA", "354 go"), no(".", "250 2.0.0 queued")}
	}},
	{name: "every RCPT refused", want: []int{550, 451}, script: func(p bool) []step {
		return script([]step{ok250("MAIL"), no("RCPT", "550 5.1.1 unknown"), no("RCPT", "451 4.3.0 later")},
			only(p, no("DATA", "554 5.5.1 no valid recipients")), []step{ok250("RSET"), rehello})
	}},
	{name: "every RCPT refused, DATA taken anyway", want: []int{550, 550}, script: func(p bool) []step {
		return script([]step{ok250("MAIL"), no("RCPT", "550 5.1.1 unknown"), no("RCPT", "550 5.1.1 unknown")},
			only(p, no("DATA", "354 go"), no(".", "554 5.5.1 no valid recipients")), []step{ok250("RSET"), rehello})
	}},
	{name: "RCPT 421", want: []int{421, 421}, broken: true, script: func(bool) []step {
		return []step{ok250("MAIL"), no("RCPT", "421 4.3.2 going down"), hangUpAt("RCPT")}
	}},
	{name: "DATA refused", want: []int{451, 451}, script: func(bool) []step {
		return []step{ok250("MAIL"), ok250("RCPT"), ok250("RCPT"), no("DATA", "451 4.3.0 busy"), ok250("RSET"), rehello}
	}},
	{name: "DATA 421", want: []int{421, 421}, broken: true, script: func(bool) []step {
		return []step{ok250("MAIL"), ok250("RCPT"), ok250("RCPT"), no("DATA", "421 4.3.2 going down")}
	}},
	{name: "message refused", want: []int{554, 554}, script: func(bool) []step {
		return []step{ok250("MAIL"), ok250("RCPT"), ok250("RCPT"), no("DATA", "354 go"), no(".", "554 5.7.1 spam")}
	}},
	{name: "421 after the dot", want: []int{421, 421}, broken: true, script: func(bool) []step {
		return []step{ok250("MAIL"), ok250("RCPT"), ok250("RCPT"), no("DATA", "354 go"), no(".", "421 4.3.2 going down")}
	}},
	{name: "hang-up after the dot", want: []int{0, 0}, errOp: "dot", afterDot: true, broken: true, script: func(bool) []step {
		return []step{ok250("MAIL"), ok250("RCPT"), ok250("RCPT"), no("DATA", "354 go"), hangUpAt(".")}
	}},
	{name: "hang-up before the replies", want: []int{0, 0}, errOp: "MAIL", broken: true, script: func(bool) []step {
		return []step{hangUpAt("MAIL")}
	}},
}

// A pipelining client gives every recipient the verdict a client that
// waits for each reply gives, for the same server behaviour, and leaves
// the connection in the same state.
func TestPipelinedSameVerdicts(t *testing.T) {
	for _, tc := range pipeCases {
		for _, piped := range []bool{false, true} {
			name := tc.name + map[bool]string{false: "/step-by-step", true: "/pipelined"}[piped]
			t.Run(name, func(t *testing.T) {
				f := newFake(t, append(ehloWith(piped), tc.script(piped)...)...)
				c := fakeDial(t, f, Options{StartTLS: StartTLSNone})
				res, err := c.Send(context.Background(), "a@example.org", []string{"b@example.org", "c@example.org"}, strings.NewReader(testBody), 0)
				checkCase(t, tc, res, err, c)
				c.Close()
				<-waitDone(f)
			})
		}
	}
}

func checkCase(t *testing.T, tc pipeCase, res Result, err error, c *Conn) {
	t.Helper()
	if tc.errOp == "" && err != nil {
		t.Fatalf("Send: %v", err)
	}
	if tc.errOp != "" {
		wantError(t, err, tc.errOp, tc.afterDot)
	}
	for i, code := range tc.want {
		if res.Rcpts[i].Code != code {
			t.Errorf("%s: code %d (%q), want %d", res.Rcpts[i].Rcpt, res.Rcpts[i].Code, res.Rcpts[i].Msg, code)
		}
	}
	if c.Broken() != tc.broken {
		t.Errorf("Broken %v, want %v", c.Broken(), tc.broken)
	}
}

// The pipelined MAIL and RCPT lines are go-smtp's for the same options:
// BODY=8BITMIME, SIZE, SMTPUTF8, and ORCPT in xtext and in RFC 6533's
// unitext and xtext forms.
func TestPipelinedCommandsAreGoSMTPs(t *testing.T) {
	orcpt := map[string]string{
		"a@example.org": "x+y=z w@example.org",
		"b@example.org": "ünï+=@example.org",
	}
	for _, utf8 := range []bool{true, false} {
		exts := []string{"8BITMIME", "SIZE 100000", "DSN"}
		rcpts := []string{"a@example.org", "b@example.org"}
		if utf8 {
			exts = append(exts, "SMTPUTF8")
			rcpts = append(rcpts, "jö@example.org")
		}
		var lines [2][]string
		for i, piped := range []bool{false, true} {
			steps := []step{ok250("MAIL")}
			for range rcpts {
				steps = append(steps, ok250("RCPT"))
			}
			steps = append(steps, no("DATA", "354 go"), no(".", "250 2.0.0 queued"))
			f := newFake(t, append(ehloWith(piped, exts...), steps...)...)
			c := fakeDial(t, f, Options{StartTLS: StartTLSNone})
			res, err := c.SendWith(context.Background(), "a@example.org", rcpts, strings.NewReader(testBody), int64(len(testBody)), SendOptions{ORCPT: orcpt})
			if err != nil || !res.Rcpts[0].OK {
				t.Fatalf("SendWith: %v %+v", err, res)
			}
			c.Close()
			<-waitDone(f)
			cmds, _ := f.seen()
			lines[i] = cmds[1 : 1+1+len(rcpts)+1] // after EHLO: MAIL, RCPTs, DATA
		}
		if !slices.Equal(lines[0], lines[1]) {
			t.Errorf("SMTPUTF8 %v: go-smtp sends\n%q\npipelined\n%q", utf8, lines[0], lines[1])
		}
		if !strings.Contains(lines[1][1], "ORCPT=RFC822;x+2By+3Dz+20w@example.org") {
			t.Errorf("RCPT %q: ORCPT not in xtext", lines[1][1])
		}
	}
}

// RFC 6533 §3: '\' is not a QCHAR; go-smtp v0.25.1 sends it as it is.
func TestUTF8AddrEscapesBackslash(t *testing.T) {
	if got := utf8Addr(`a\b ü@x`, false); got != `a\x{5C}b\x{20}\x{FC}@x` {
		t.Errorf("xtext form %q", got)
	}
	if got := utf8Addr(`a\b ü@x`, true); got != `a\x{5C}b\x{20}ü@x` {
		t.Errorf("unitext form %q", got)
	}
}
