package smtpc

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
)

func probe(t *testing.T, f *fake, o Options, from, rcpt string) (bool, []ProbeStep) {
	t.Helper()
	var steps []ProbeStep
	ok := Probe(context.Background(), f.target(), o, from, rcpt, func(s ProbeStep) { steps = append(steps, s) })
	return ok, steps
}

func names(steps []ProbeStep) string {
	var l []string
	for _, s := range steps {
		l = append(l, s.Name)
	}
	return strings.Join(l, " ")
}

// TestProbeNeverSendsData: the whole probe is one transaction up to RCPT,
// then RSET and QUIT; the server's extensions and replies are reported.
func TestProbeNeverSendsData(t *testing.T) {
	f := newFake(t,
		step{reply: []string{"220 mx ESMTP\r\n"}},
		step{want: "EHLO GW.TEST", reply: []string{"250-mx\r\n250-pipelining\r\n250 SIZE 1000\r\n"}},
		step{want: "MAIL FROM:<>", reply: []string{"250 2.1.0 Ok\r\n"}},
		step{want: "RCPT TO:<POSTMASTER>", reply: []string{"250 2.1.5 Ok\r\n"}},
		step{want: "RSET", reply: []string{"250 2.0.0 Ok\r\n"}},
	)
	ok, steps := probe(t, f, Options{Helo: "gw.test", StartTLS: StartTLSNone}, "", "postmaster")
	if !ok || names(steps) != "connect greeting EHLO MAIL RCPT RSET QUIT" {
		t.Fatalf("ok %v, steps %q", ok, names(steps))
	}
	if got := strings.Join(steps[2].Extensions, ","); got != "PIPELINING,SIZE 1000" {
		t.Errorf("extensions %q (keywords upper-cased, RFC 5321 §2.4)", got)
	}
	if s := steps[4]; s.Code != 250 || s.Enhanced != "2.1.5" || s.Text != "Ok" {
		t.Errorf("RCPT step %+v", s)
	}
	cmds, bodies := f.seen()
	if strings.Join(cmds, "|") != "EHLO gw.test|MAIL FROM:<>|RCPT TO:<postmaster>|RSET|QUIT" || len(bodies) != 0 {
		t.Errorf("commands %q, bodies %d", cmds, len(bodies))
	}
}

// TestProbeAuthRefusedMasked: a 535 ends the probe at AUTH, with a
// courtesy QUIT; the password the server echoes is masked.
func TestProbeAuthRefusedMasked(t *testing.T) {
	const user, pass = "u", "s3cret-pw"
	plain := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	f := newFake(t,
		step{reply: []string{"220 mx ESMTP\r\n"}},
		step{want: "EHLO", reply: []string{"250-mx\r\n250 AUTH LOGIN PLAIN\r\n"}},
		step{want: "AUTH PLAIN ", reply: []string{"535 5.7.8 bad: " + plain + " " + pass + "\r\n"}},
	)
	ok, steps := probe(t, f, Options{Helo: "gw.test", StartTLS: StartTLSNone, Username: user, Password: pass}, "", "postmaster")
	if ok || names(steps) != "connect greeting EHLO AUTH" {
		t.Fatalf("ok %v, steps %q", ok, names(steps))
	}
	a := steps[3]
	if a.Code != 535 || a.Mechanism != "PLAIN" || a.Err == nil || a.Text != "bad: **** ****" {
		t.Errorf("AUTH step %+v", a)
	}
	if strings.Contains(a.Err.Error(), pass) || strings.Contains(a.Err.Error(), plain) {
		t.Errorf("the password is in the error: %v", a.Err)
	}
	if cmds, _ := f.seen(); len(cmds) != 3 || cmds[1] != "AUTH PLAIN "+plain || cmds[2] != "QUIT" {
		t.Errorf("want EHLO, AUTH PLAIN with the initial response (RFC 4954 §4), QUIT: %q", cmds)
	}
}
