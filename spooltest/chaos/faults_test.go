package chaos

import (
	"testing"

	"example.org/popspool/spooltest/faultproxy"
)

// step is one line through a proxy and whether the rule must cut there
// (or answer it in the server's place).
type step struct {
	dir   faultproxy.Dir
	line  string
	cut   bool
	reply string
}

const up, down = faultproxy.Up, faultproxy.Down

func play(t *testing.T, name string, rule faultproxy.Filter, steps []step) {
	t.Helper()
	for i, s := range steps {
		got := rule(1, s.dir, []byte(s.line))
		if got.Cut != s.cut || string(got.Reply) != s.reply {
			t.Fatalf("%s: step %d %v %q: cut=%v reply=%q, want %v %q", name, i, s.dir, s.line, got.Cut, got.Reply, s.cut, s.reply)
		}
		if s.cut {
			return
		}
	}
}

// pop3Session is a session with a pipelined UIDL, a RETR of three lines
// and two pipelined DELEs; cut marks where the test wants the fault.
func pop3Session(cutAt int) []step {
	steps := []step{
		{down, "+OK ready <1@x>\r\n", false, ""},
		{up, "USER u\r\n", false, ""}, {down, "+OK\r\n", false, ""},
		{up, "PASS p\r\n", false, ""}, {down, "+OK 2 messages\r\n", false, ""},
		{up, "UIDL\r\n", false, ""}, {down, "+OK\r\n", false, ""}, {down, "1 a\r\n", false, ""}, {down, "2 b\r\n", false, ""}, {down, ".\r\n", false, ""},
		{up, "LIST 1\r\n", false, ""}, {down, "+OK 1 30\r\n", false, ""},
		{up, "RETR 1\r\n", false, ""}, {down, "+OK 30 octets\r\n", false, ""},
		{down, "Subject: x\r\n", false, ""}, {down, "\r\n", false, ""}, {down, "..body\r\n", false, ""}, {down, ".\r\n", false, ""},
		{up, "DELE 1\r\n", false, ""}, {up, "DELE 2\r\n", false, ""}, {down, "+OK\r\n", false, ""}, {down, "+OK\r\n", false, ""},
		{up, "QUIT\r\n", false, ""}, {down, "+OK bye\r\n", false, ""},
	}
	if cutAt >= 0 {
		steps[cutAt].cut = true
	}
	return steps
}

func TestPOP3Faults(t *testing.T) {
	cases := []struct {
		kind  Kind
		skip  int
		cutAt int
	}{
		{POP3MidRetr, 0, 14},  // the first data line
		{POP3MidRetr, 2, 16},  // the third
		{POP3MidRetr, 10, 17}, // the message ends first: cut at the terminator
		{POP3BeforeQuit, 0, 22},
		{POP3QuitReply, 0, 23},
	}
	for _, c := range cases {
		f := NewFaults()
		f.Arm(c.kind, c.skip)
		play(t, c.kind.String(), f.POP3Rule().Filter(), pop3Session(c.cutAt))
		if f.Fired()[c.kind] != 1 {
			t.Fatalf("%s did not fire", c.kind)
		}
	}
	f := NewFaults() // nothing armed: nothing cut
	play(t, "unarmed", f.POP3Rule().Filter(), pop3Session(-1))
}

func TestPOP3QuitFaultsNeedADele(t *testing.T) {
	f := NewFaults()
	f.Arm(POP3BeforeQuit, 0)
	f.Arm(POP3QuitReply, 0)
	play(t, "no DELE", f.POP3Rule().Filter(), []step{
		{down, "+OK ready\r\n", false, ""}, {up, "USER u\r\n", false, ""}, {down, "+OK\r\n", false, ""},
		{up, "QUIT\r\n", false, ""}, {down, "+OK bye\r\n", false, ""},
	})
}

func smtpSession(cutAt int) []step {
	steps := []step{
		{down, "220 sink ESMTP\r\n", false, ""},
		{up, "EHLO me\r\n", false, ""}, {down, "250-sink\r\n", false, ""}, {down, "250 8BITMIME\r\n", false, ""},
		{up, "MAIL FROM:<a@b>\r\n", false, ""}, {down, "250 2.0.0 ok\r\n", false, ""},
		{up, "RCPT TO:<c@d>\r\n", false, ""}, {down, "250 2.0.0 ok\r\n", false, ""},
		{up, "DATA\r\n", false, ""}, {down, "354 go ahead\r\n", false, ""},
		{up, "Subject: x\r\n", false, ""}, {up, "\r\n", false, ""}, {up, "..dot\r\n", false, ""}, {up, ".\r\n", false, ""},
		{down, "250 2.0.0 queued\r\n", false, ""},
		{up, "QUIT\r\n", false, ""}, {down, "221 bye\r\n", false, ""},
	}
	if cutAt >= 0 {
		steps[cutAt].cut = true
	}
	return steps
}

func TestSMTPFaults(t *testing.T) {
	cases := []struct {
		kind  Kind
		skip  int
		cutAt int
	}{
		{SMTPMidData, 0, 10},
		{SMTPMidData, 2, 12},
		{SMTPMidData, 9, 13}, // at the final dot: the server never sees it
		{SMTPAfterDot, 0, 14},
	}
	for _, c := range cases {
		f := NewFaults()
		f.Arm(c.kind, c.skip)
		play(t, c.kind.String(), f.SMTPRule(), smtpSession(c.cutAt))
	}
	f := NewFaults()
	play(t, "unarmed", f.SMTPRule(), smtpSession(-1))
	// A refused DATA is no transfer.
	f.Arm(SMTPAfterDot, 0)
	play(t, "DATA refused", f.SMTPRule(), []step{
		{up, "DATA\r\n", false, ""}, {down, "554 no valid recipients\r\n", false, ""},
		{up, "RSET\r\n", false, ""}, {down, "250 ok\r\n", false, ""},
	})
}

func TestSMTPRcptRefusal(t *testing.T) {
	f := NewFaults()
	f.ArmRcpt()
	steps := smtpSession(-1)
	steps[6].reply = Rcpt4xx // RCPT: answered by the proxy, so no 250 from the server
	steps = append(steps[:7], step{up, "RSET\r\n", false, ""}, step{down, "250 ok\r\n", false, ""})
	play(t, "rcpt", f.SMTPRule(), append(steps, smtpSession(-1)[4:]...)) // the retry passes
	if n := f.DisarmRcpt(); n != 1 {
		t.Fatalf("fired %d", n)
	}
	// A pipelined RCPT (MAIL's reply still to come) is let through: an
	// answer now would overtake MAIL's. The next one is refused.
	f.ArmRcpt()
	play(t, "pipelined", f.SMTPRule(), []step{
		{down, "220 mx\r\n", false, ""},
		{up, "MAIL FROM:<a@b>\r\n", false, ""}, {up, "RCPT TO:<c@d>\r\n", false, ""},
		{down, "250 ok\r\n", false, ""}, {down, "250 ok\r\n", false, ""},
		{up, "RCPT TO:<e@f>\r\n", false, Rcpt4xx},
	})
}
