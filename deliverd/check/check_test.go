package check

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
)

func init() {
	// Bounded waits: a fault must not hold a test for the operator's 30s.
	connectTimeout, commandTimeout = 5*time.Second, 5*time.Second
}

// stepLine is the shape of every line after the header: "ok ..." or
// "FAILED: what — what to do (event N)".
var stepLine = regexp.MustCompile(`^  [a-z]+: +(ok .+|FAILED: .+ — .+ \(event 40(3[0-9]|40)\))$`)

const secret = "hunter2-Sekrit"

// loadConfig writes a config with [deliver] lines and loads it as deliverd
// would, defaults and validation included.
func loadConfig(t *testing.T, deliver ...string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	text := fmt.Sprintf("spool = %q\n\n[deliver]\n%s\n", filepath.Join(dir, "spool"), strings.Join(deliver, "\n"))
	path := filepath.Join(dir, "popspool.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// passwordFile writes the secret where deliver.password_file can name it.
func passwordFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "deliver.pass")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type result struct {
	code     int
	out, log string
}

func runCheck(t *testing.T, cfg *config.Config) result {
	t.Helper()
	var out, log bytes.Buffer
	code := Run(context.Background(), cfg, &out, zerolog.New(&log))
	r := result{code: code, out: out.String(), log: log.String()}
	t.Logf("deliverd check, exit code %d:\n%s", code, r.out)
	lines := strings.Split(strings.TrimRight(r.out, "\n"), "\n")
	for _, l := range lines[1:] {
		if !stepLine.MatchString(l) {
			t.Errorf("badly formed step line %q", l)
		}
	}
	b64 := base64.StdEncoding.EncodeToString([]byte(secret))
	plain := base64.StdEncoding.EncodeToString([]byte("\x00checker\x00" + secret))
	for _, s := range []string{secret, b64, plain} {
		if strings.Contains(r.out, s) || strings.Contains(r.log, s) {
			t.Errorf("the password (%q) is in the output or the log:\n%s\n%s", s, r.out, r.log)
		}
	}
	return r
}

// failedWith asserts the exit code, the failing step's line and its
// event, in the output and in the log.
func (r result) failedWith(t *testing.T, line string, ev int) {
	t.Helper()
	if r.code != 1 {
		t.Errorf("exit code %d, want 1", r.code)
	}
	if !strings.Contains(r.out, line) || !strings.Contains(r.out, fmt.Sprintf("(event %d)\n", ev)) {
		t.Errorf("want %q ... (event %d) in:\n%s", line, ev, r.out)
	}
	if strings.Count(r.out, "FAILED") != 1 {
		t.Errorf("want exactly one failed step:\n%s", r.out)
	}
	if !strings.Contains(r.log, fmt.Sprintf(`"event":%d`, ev)) || strings.Count(r.log, `"event"`) != 1 {
		t.Errorf("want one log line with event %d, got:\n%s", ev, r.log)
	}
}

func (r result) passed(t *testing.T, lines ...string) {
	t.Helper()
	if r.code != 0 || r.log != "" {
		t.Errorf("exit code %d, log %q, want 0 and no event:\n%s", r.code, r.log, r.out)
	}
	for _, l := range lines {
		if !strings.Contains(r.out, l) {
			t.Errorf("want %q in:\n%s", l, r.out)
		}
	}
}

func TestCheckFakeServerAllSteps(t *testing.T) {
	f := &fakeSMTP{exts: []string{"PIPELINING", "SIZE 10240000", "8BITMIME"}}
	addr := f.start(t)
	cfg := loadConfig(t, `target = "smtp://`+addr+`"`, `helo = "gw.popspool.test"`, `postmaster = "postmaster@popspool.test"`)
	r := runCheck(t, cfg)
	r.passed(t,
		"deliver target smtp://"+addr+", starttls = none, no AUTH, postmaster postmaster@popspool.test\n",
		"  resolve:   ok 127.0.0.1 is an address\n",
		"  connect:   ok connected to "+addr+"\n",
		"  greeting:  ok 220 fake.test ESMTP\n",
		"  ehlo:      ok 250 fake.test; extensions: PIPELINING, SIZE 10240000, 8BITMIME\n",
		"  mail:      ok 250 2.0.0 Ok\n",
		"  rcpt:      ok 250 2.0.0 Ok\n",
		"  rset:      ok 250 2.0.0 Ok\n",
		"  quit:      ok 221 2.0.0 Bye\n")
	want := []string{"EHLO gw.popspool.test", "MAIL FROM:<>", "RCPT TO:<postmaster@popspool.test>", "RSET", "QUIT"}
	if got := f.commands(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("commands %q, want %q (never DATA)", got, want)
	}
}

func TestCheckLMTPSaysLHLO(t *testing.T) {
	f := &fakeSMTP{exts: []string{"PIPELINING", "ENHANCEDSTATUSCODES"}}
	addr := f.start(t)
	r := runCheck(t, loadConfig(t, `target = "lmtp://`+addr+`"`, `helo = "gw.popspool.test"`))
	r.passed(t, "  lhlo:      ok 250 fake.test; extensions: PIPELINING, ENHANCEDSTATUSCODES\n", "  rcpt:      ok")
	if got := f.commands(); len(got) == 0 || got[0] != "LHLO gw.popspool.test" || got[2] != "RCPT TO:<postmaster>" {
		t.Errorf("commands %q", got)
	}
}

func TestCheckStartTLSVerified(t *testing.T) {
	dir := t.TempDir()
	cert, caFile := selfSigned(t, dir)
	f := &fakeSMTP{exts: []string{"STARTTLS", "AUTH PLAIN LOGIN"}, cert: cert}
	addr := f.start(t)
	cfg := loadConfig(t, `target = "smtp://`+addr+`"`, `starttls = "required"`, `ca_file = "`+caFile+`"`,
		`username = "checker"`, `password_file = "`+passwordFile(t)+`"`)
	r := runCheck(t, cfg)
	r.passed(t,
		"starttls = required, AUTH as checker",
		"  starttls:  ok 220 2.0.0 Ready to start TLS\n",
		`  tls:       ok TLS 1.3, certificate "CN=fake.test,O=popspool check test" issued by "CN=fake.test,O=popspool check test" verified`,
		"  auth:      ok PLAIN as checker: 235 2.7.0 Authentication successful\n",
		"  quit:      ok 221")
	if got := f.commands(); len(got) < 3 || !strings.HasPrefix(got[2], "EHLO ") {
		t.Errorf("no EHLO after TLS (RFC 3207 §4.2): %q", got)
	}
}

// TestCheckOpportunisticClearText: opportunistic STARTTLS that is not
// offered, or refused, lets the session go on in clear text, as Dial does.
func TestCheckOpportunisticClearText(t *testing.T) {
	for _, c := range []struct {
		f    *fakeSMTP
		line string
	}{
		{&fakeSMTP{}, "  starttls:  ok not offered by the server; opportunistic: the session goes on in clear text\n"},
		{&fakeSMTP{exts: []string{"STARTTLS"}, replies: map[string]string{"STARTTLS": "454 4.7.0 TLS not available due to local problem"}},
			"  starttls:  ok refused by the server (454 4.7.0 TLS not available due to local problem); opportunistic: the session goes on in clear text\n"},
	} {
		addr := c.f.start(t)
		r := runCheck(t, loadConfig(t, `target = "smtp://`+addr+`"`, `starttls = "opportunistic"`))
		r.passed(t, "starttls = opportunistic", c.line, "  quit:      ok 221")
	}
}

func TestCheckFaults(t *testing.T) {
	for _, c := range []struct {
		name   string
		f      *fakeSMTP
		config []string
		line   string
		event  int
	}{
		{"greeting 554", &fakeSMTP{greeting: "554 5.7.1 No SMTP service here"}, nil,
			"  greeting:  FAILED: the server said: 554 5.7.1 No SMTP service here — the server refuses connections from this host", 4032},
		{"EHLO refused", &fakeSMTP{ehlo: "550 5.7.1 <gw>: Helo command rejected: need fully-qualified hostname"}, []string{`helo = "gw"`},
			"  ehlo:      FAILED: the server said: 550 5.7.1 <gw>: Helo command rejected: need fully-qualified hostname — the server refused EHLO: check deliver.helo", 4032},
		{"STARTTLS untrusted certificate", &fakeSMTP{exts: []string{"STARTTLS"}}, []string{`starttls = "required"`},
			"  tls:       FAILED: tls: failed to verify certificate: x509: certificate signed by unknown authority — the server's certificate is not signed by an authority this machine trusts", 4033},
		{"STARTTLS required, refused", &fakeSMTP{exts: []string{"STARTTLS"}, replies: map[string]string{"STARTTLS": "454 4.7.0 TLS not available due to local problem"}},
			[]string{`starttls = "required"`},
			"  starttls:  FAILED: the server refused STARTTLS: 454 4.7.0 TLS not available due to local problem — enable TLS on the server", 4033},
		{"STARTTLS required, not offered", &fakeSMTP{}, []string{`starttls = "required"`},
			`  starttls:  FAILED: the server does not offer STARTTLS and deliver.starttls = "required" — enable TLS on the server`, 4033},
		{"530 at MAIL", &fakeSMTP{replies: map[string]string{"MAIL": "530 5.7.0 Authentication required"}}, nil,
			"  mail:      FAILED: the server said: 530 5.7.0 Authentication required — anonymous access is disabled on the server (KB 885685, event 12052): either set deliver.username", 4035},
		{"530 at RCPT", &fakeSMTP{replies: map[string]string{"RCPT": "530 5.7.1 Client was not authenticated"}}, nil,
			"  rcpt:      FAILED: the server said: 530 5.7.1 Client was not authenticated — anonymous access is disabled on the server (KB 885685, event 12052)", 4035},
		{"530 must STARTTLS", &fakeSMTP{replies: map[string]string{"MAIL": "530 5.7.0 Must issue a STARTTLS command first"}}, nil,
			`  mail:      FAILED: the server said: 530 5.7.0 Must issue a STARTTLS command first — the server takes mail only over TLS: set deliver.starttls = "required"`, 4035},
		{"AUTH refused 535", &fakeSMTP{exts: []string{"AUTH PLAIN"}, replies: map[string]string{"AUTH": "535 5.7.8 Error: authentication failed: " + secret}},
			[]string{`username = "checker"`, `password_file = "PASS"`},
			"  auth:      FAILED: AUTH PLAIN as checker refused; the server said: 535 5.7.8 Error: authentication failed: **** — check deliver.username and the password", 4034},
		{"AUTH not offered", &fakeSMTP{exts: []string{"PIPELINING"}}, []string{`username = "checker"`, `password_file = "PASS"`},
			"  auth:      FAILED: the server offers neither AUTH PLAIN nor AUTH LOGIN (after STARTTLS, if any) — enable SASL AUTH on the server", 4034},
		{"MAIL refused", &fakeSMTP{replies: map[string]string{"MAIL": "553 5.7.1 <>: Sender address rejected"}}, nil,
			"  mail:      FAILED: the server said: 553 5.7.1 <>: Sender address rejected (to MAIL FROM:<>, the null sender) — deliverd sends delivery status notifications from <>", 4036},
		{"relay denied", &fakeSMTP{replies: map[string]string{"RCPT": "554 5.7.1 <postmaster@elsewhere.example>: Relay access denied"}},
			[]string{`postmaster = "postmaster@elsewhere.example"`},
			"  rcpt:      FAILED: the server said: 554 5.7.1 <postmaster@elsewhere.example>: Relay access denied (to RCPT TO:<postmaster@elsewhere.example>) — the server does not take mail for postmaster@elsewhere.example from this host: allow relay", 4037},
		{"postmaster unknown", &fakeSMTP{replies: map[string]string{"RCPT": "550 5.1.1 <postmaster>: Recipient address rejected: User unknown"}}, nil,
			"  rcpt:      FAILED: the server said: 550 5.1.1 <postmaster>: Recipient address rejected: User unknown (to RCPT TO:<postmaster>) — the server has no mailbox for the postmaster", 4037},
		{"421 at RCPT", &fakeSMTP{replies: map[string]string{"RCPT": "421 4.3.2 Service shutting down"}}, nil,
			"  rcpt:      FAILED: the server closed the session: 421 4.3.2 Service shutting down — the server is busy", 4039},
		{"not SMTP", &fakeSMTP{greeting: "+OK POP3 ready"}, nil,
			"  greeting:  FAILED: invalid response code: \"+OK POP3 ready\" — what answers on", 4039},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := c.f
			if f.cert == nil {
				f.cert, _ = selfSigned(t, t.TempDir())
			}
			addr := f.start(t)
			lines := []string{`target = "smtp://` + addr + `"`}
			for _, l := range c.config {
				lines = append(lines, strings.Replace(l, "PASS", passwordFile(t), 1))
			}
			r := runCheck(t, loadConfig(t, lines...))
			r.failedWith(t, c.line, c.event)
			for _, cmd := range f.commands() {
				if strings.HasPrefix(cmd, "DATA") {
					t.Errorf("the check sent DATA")
				}
			}
		})
	}
}

func TestCheckConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := runCheck(t, loadConfig(t, `target = "smtp://`+addr+`"`))
	r.failedWith(t, "  connect:   FAILED: dial tcp "+addr+": connect: connection refused — nothing listens on "+addr+": start the mail server", 4031)
	if strings.Contains(r.out, "greeting:") {
		t.Errorf("steps after the failed one:\n%s", r.out)
	}
}

func TestCheckUnresolved(t *testing.T) {
	r := runCheck(t, loadConfig(t, `target = "smtp://no-such-host.invalid:25"`))
	r.failedWith(t, "  resolve:   FAILED: ", 4030)
	if !strings.Contains(r.out, "check the host name in deliver.target") {
		t.Errorf("no advice:\n%s", r.out)
	}
}

func TestCheckPasswordUnreadable(t *testing.T) {
	f := &fakeSMTP{}
	addr := f.start(t)
	cfg := loadConfig(t, `target = "smtp://`+addr+`"`, `username = "checker"`, `password_command = "echo store locked >&2; exit 3"`)
	r := runCheck(t, cfg)
	r.failedWith(t, "  auth:      FAILED: deliver: password_command: exit status 3: store locked — check deliver.password_file", 4034)
	if len(f.commands()) != 0 {
		t.Errorf("connected although the password could not be read")
	}
}

func TestCheckMaildir(t *testing.T) {
	root := filepath.Join(t.TempDir(), "mail")
	pm := filepath.Join(root, "postmaster")
	target := `target = "maildir://` + root + `/{user}"`
	t.Run("missing root", func(t *testing.T) {
		r := runCheck(t, loadConfig(t, target))
		r.failedWith(t, "  root:      FAILED: stat "+root+": no such file or directory — create it (mkdir -p "+root, 4038)
	})
	t.Run("good, create off", func(t *testing.T) {
		for _, d := range []string{"tmp", "new", "cur"} {
			if err := os.MkdirAll(filepath.Join(pm, d), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		r := runCheck(t, loadConfig(t, target))
		r.passed(t, "  root:      ok "+root+" is a directory\n",
			"  writable:  ok created and removed a probe file in "+filepath.Join(pm, "tmp")+"\n",
			"  create:    ok maildir_create = false: only the Maildirs of addresses the config names",
			"the postmaster's "+pm+" exists\n")
		if left, _ := os.ReadDir(filepath.Join(pm, "tmp")); len(left) != 0 {
			t.Errorf("probe file left behind: %v", left)
		}
	})
	t.Run("create on, no Maildir yet", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "mail")
		if err := os.Mkdir(other, 0o700); err != nil {
			t.Fatal(err)
		}
		r := runCheck(t, loadConfig(t, `target = "maildir://`+other+`/{domain}/{user}"`, `maildir_create = true`, `postmaster = "pm@contoso.local"`))
		r.passed(t, "  writable:  ok created and removed a probe file in "+other+"\n",
			"  create:    ok maildir_create = true: a missing Maildir is created for any recipient; the postmaster's "+
				filepath.Join(other, "contoso.local", "pm")+" does not exist yet")
	})
	t.Run("tmp not writable", func(t *testing.T) {
		// A tmp/ that is a file fails for root too, who ignores modes.
		if err := os.MkdirAll(filepath.Join(pm, "new"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(pm, "tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pm, "tmp"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCheck(t, loadConfig(t, target))
		r.failedWith(t, "  writable:  FAILED: open "+filepath.Join(pm, "tmp")+"/.popspool-check.", 4038)
		if !strings.Contains(r.out, "not a directory — give deliverd's user write permission there") {
			t.Errorf("no advice:\n%s", r.out)
		}
	})
	t.Run("root read-only", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes into a mode 0555 folder; the case above covers root")
		}
		ro := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		r := runCheck(t, loadConfig(t, `target = "maildir://`+ro+`/{user}"`))
		r.failedWith(t, "permission denied — give deliverd's user write permission there", 4038)
	})
	t.Run("root is a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCheck(t, loadConfig(t, `target = "maildir://`+file+`/{user}"`))
		r.failedWith(t, "  root:      FAILED: "+file+" is not a directory — deliver.target's path must lead to a folder of Maildirs", 4038)
	})
}

func TestCheckGreetingTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accepts, then says nothing
		c, err := ln.Accept()
		if err == nil {
			time.Sleep(3 * time.Second)
			c.Close()
		}
	}()
	old := commandTimeout
	commandTimeout = 300 * time.Millisecond
	defer func() { commandTimeout = old }()
	start := time.Now()
	r := runCheck(t, loadConfig(t, `target = "smtp://`+ln.Addr().String()+`"`))
	r.failedWith(t, "  greeting:  FAILED: read tcp ", 4039)
	if !strings.Contains(r.out, "i/o timeout — no reply within 300ms: the server accepted the connection but hangs") {
		t.Errorf("no time-out advice:\n%s", r.out)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the check took %s with a 300ms time-out", d)
	}
}

func TestCheckSMTPSOnPlainPort(t *testing.T) {
	f := &fakeSMTP{}
	addr := f.start(t)
	r := runCheck(t, loadConfig(t, `target = "smtps://`+addr+`"`))
	r.failedWith(t, "  tls:       FAILED: tls: first record does not look like a TLS handshake — smtps:// starts TLS at once (port 465); for a server that offers STARTTLS (port 25 or 587) use smtp://", 4033)
}
