package fetch

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/spooltest/dovecot"
)

// stepLines checks the shape of Check's output: a header line, then one
// line per step, each "ok ..." or "FAILED: ... — ... (event N)".
var stepLine = regexp.MustCompile(`^  [a-z]+: +(ok .*|warning: .*|FAILED: .+ — .+ \(event \d{4}\))$`)

func runCheck(t *testing.T, a *config.Account) (bool, string) {
	t.Helper()
	return runCheckLogged(t, a, zerolog.Nop())
}

func runCheckLogged(t *testing.T, a *config.Account, log zerolog.Logger) (bool, string) {
	t.Helper()
	var out bytes.Buffer
	ok := Check(context.Background(), a, t.TempDir(), &out, log)
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	for _, l := range lines[1:] {
		if !stepLine.MatchString(l) {
			t.Errorf("badly formed step line %q", l)
		}
	}
	return ok, out.String()
}

func TestCheckPop3srv(t *testing.T) {
	r := newRig(t)
	ok, out := runCheck(t, &r.cfg.Account[0])
	if !ok || !strings.Contains(out, "stat:      ok 24 messages") || !strings.Contains(out, "login:     ok as u (USER/PASS)") {
		t.Fatalf("check failed:\n%s", out)
	}
	if r.srv.Stats().Left != 24 {
		t.Fatal("check changed the mailbox")
	}
	os.WriteFile(r.cfg.Account[0].PasswordFile, []byte("wrong\n"), 0o600)
	ok, out = runCheck(t, &r.cfg.Account[0])
	if ok || !strings.Contains(out, "login:     FAILED: USER/PASS as u refused; the server said: -ERR [AUTH] invalid credentials — check username and password") ||
		!strings.Contains(out, "(event 2005)") || strings.Contains(out, "stat:") {
		t.Fatalf("wrong password:\n%s", out)
	}
}

func TestCheckFailures(t *testing.T) {
	r := newRig(t)
	a := r.cfg.Account[0]
	for _, c := range []struct {
		mutate func(a *config.Account)
		want   string
	}{
		{func(a *config.Account) { a.Server = "no-such-host.invalid:110" }, "resolve:   FAILED: "},
		{func(a *config.Account) { a.Server = "127.0.0.1:1" }, "connect:   FAILED: "},
		{func(a *config.Account) { a.TLS = "implicit" }, "tls:       FAILED: "},
		{func(a *config.Account) { a.TLS = "starttls" }, "stls:      FAILED: "},
		{func(a *config.Account) { a.Auth = "xoauth2" }, "login:     FAILED: auth = \"xoauth2\", but the server offers SASL [] (CAPA) — set auth to a method the server offers (event 2020)"},
	} {
		b := a
		c.mutate(&b)
		ok, out := runCheck(t, &b)
		if ok || !strings.Contains(out, c.want) {
			t.Errorf("want %q in:\n%s", c.want, out)
		}
	}
}

func TestCheckDovecot(t *testing.T) {
	dc := dovecot.Start(t, map[string]string{dcUser: dcPass})
	dc.Put(t, dcUser, []byte("Subject: x\r\n\r\ny\r\n"))
	for _, mode := range []string{"implicit", "starttls"} {
		r := &rig{}
		a := config.Account{TLS: mode, Server: dc.TLSAddr, CAFile: dc.CAFile, Username: dcUser}
		if mode == "starttls" {
			a.Server = dc.Addr
		}
		r.setup(t, t.TempDir(), a, dcPass)
		ok, out := runCheck(t, &r.cfg.Account[0])
		if !ok || !strings.Contains(out, `certificate "CN=localhost,O=popspool test server"`) ||
			!strings.Contains(out, `greeting:  ok "Dovecot (Debian) ready.`) || !strings.Contains(out, "stat:      ok 1 message (17 octets)") {
			t.Fatalf("%s:\n%s", mode, out)
		}
		var list bytes.Buffer
		if !CheckList(context.Background(), &r.cfg.Account[0], r.s.Root, &list, zerolog.Nop()) ||
			!regexp.MustCompile(`(?m)^ +1 +17  new +[0-9a-f]+$`).MatchString(list.String()) ||
			!strings.Contains(list.String(), "list:      ok 1 message, 1 new (17 octets); nothing was downloaded or deleted") {
			t.Fatalf("%s, -list:\n%s", mode, list.String())
		}
		os.WriteFile(r.cfg.Account[0].PasswordFile, []byte("wrong\n"), 0o600)
		ok, out = runCheck(t, &r.cfg.Account[0])
		if ok || !strings.Contains(out, "the server said: -ERR [AUTH] Authentication failed. — check username and password") {
			t.Fatalf("%s, wrong password:\n%s", mode, out)
		}
	}
	if dc.Count(t, dcUser) != 1 {
		t.Fatal("check changed the mailbox")
	}
}
