package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "office.pass"), []byte("s3cret\n"), 0o600)
	text = strings.ReplaceAll(text, "DIR", dir)
	path := filepath.Join(dir, "popspool.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const good = `spool = "DIR/spool"

[log]
level = "debug"

[[account]]
name = "office"
server = "pop.example.net"
username = "office@example.net"
password_file = "DIR/office.pass"
interval = "2m"
max_size = "10MB"
deliver_to = ["alice@contoso.local"]

[deliver]
target = "maildir://DIR/mail/{user}"
retry = ["30s", "2m"]
`

func TestLoadGood(t *testing.T) {
	path := write(t, good)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Account[0]
	if a.Server != "pop.example.net:995" || a.Interval.D() != 2*time.Minute || a.MaxSize != 10<<20 || a.TLS != "implicit" {
		t.Fatalf("account %+v", a)
	}
	if pw, err := a.Secret(); err != nil || pw != "s3cret" {
		t.Fatalf("secret %q %v", pw, err)
	}
	if len(c.Deliver.Retry) != 2 || c.Deliver.Expire.D() != 48*time.Hour || c.Rescan.D() != 30*time.Second {
		t.Fatalf("deliver %+v", c.Deliver)
	}
}

func TestErrorsNameFileLineKey(t *testing.T) {
	bad := strings.NewReplacer(
		`level = "debug"`, `level = "loud"`,
		`interval = "2m"`, `interval = "2m"`+"\ntsl = \"none\"",
		`server = "pop.example.net"`, `server = "pop.example.net"`+"\ntls = \"tsl\"",
	).Replace(good)
	path := write(t, bad)
	_, err := Load(path)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		path + ":4: log.level: \"loud\"",
		path + ":9: account.office.tls: \"tsl\" is not implicit, starttls or none",
		path + ":13: account.tsl: unknown key",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "s3cret") {
		t.Error("secret in error")
	}
}

func TestSyntaxAndTypeErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"spool = \n", ":1: "},
		{good + "\n[deliver2]\nx = 1\n", ":19: deliver2: unknown key"},
		{strings.Replace(good, `interval = "2m"`, `interval = "soon"`, 1), ":11: account.interval: \"soon\" is not a duration"},
		{strings.Replace(good, `max_size = "10MB"`, `max_size = "big"`, 1), ":12: account.max_size: "},
	} {
		_, err := Load(write(t, c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.want, err, c.want)
		}
	}
}

func TestPlaintextNeedsOptIn(t *testing.T) {
	text := strings.Replace(good, `server = "pop.example.net"`, "server = \"pop.example.net:110\"\ntls = \"none\"", 1)
	_, err := Load(write(t, text))
	if err == nil || !strings.Contains(err.Error(), "allow_plaintext") {
		t.Fatalf("got %v", err)
	}
	text = strings.Replace(text, `tls = "none"`, "tls = \"none\"\nallow_plaintext = true", 1)
	if _, err := Load(write(t, text)); err != nil {
		t.Fatal(err)
	}
}

func TestInlinePasswordNeedsPrivateFile(t *testing.T) {
	text := strings.Replace(good, `password_file = "DIR/office.pass"`, `password = "hunter2"`, 1)
	path := write(t, text)
	os.Chmod(path, 0o644)
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v", err)
	}
	os.Chmod(path, 0o600)
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if err == nil || !strings.Contains(err.Error(), "nope.toml") {
		t.Fatalf("got %v", err)
	}
}

func TestDeliverBounceKeys(t *testing.T) {
	c, err := Load(write(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Deliver; d.BounceTo != "postmaster" || !d.SendORCPT() || d.Postmaster != "postmaster" || d.Connections != 4 || !d.Pipelines() {
		t.Fatalf("defaults %+v", d)
	}
	text := good + "bounce_to = \"both\"\ndsn = false\npostmaster = \"pm@contoso.local\"\nconnections = 2\npipelining = false\n"
	c, err = Load(write(t, text))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Deliver; d.BounceTo != "both" || d.SendORCPT() || d.Postmaster != "pm@contoso.local" || d.Connections != 2 || d.Pipelines() {
		t.Fatalf("set %+v", d)
	}
	_, err = Load(write(t, good+"pipelining = \"off\"\n"))
	if err == nil || !strings.Contains(err.Error(), "line 18") || !strings.Contains(err.Error(), "deliver.pipelining") {
		t.Errorf("pipelining = \"off\": got %v", err)
	}
	_, err = Load(write(t, good+"dsn = \"yes\"\n"))
	if err == nil || !strings.Contains(err.Error(), "line 18") || !strings.Contains(err.Error(), "deliver.dsn") {
		t.Errorf("dsn = \"yes\": got %v", err)
	}
	text = good + "bounce_to = \"everyone\"\npostmaster = \"pm at contoso\"\nconnections = 101\nhelo = \"a b\"\n"
	_, err = Load(write(t, text))
	for _, want := range []string{
		":18: deliver.bounce_to: \"everyone\" is not postmaster, sender or both",
		":19: deliver.postmaster: \"pm at contoso\" is not an address",
		":20: deliver.connections: must be between 1 and 100",
		":21: deliver.helo: ",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestStartTLSDefault(t *testing.T) {
	for target, want := range map[string]string{
		"smtp://127.0.0.1:25": "none", "smtp://[::1]:25": "none", "lmtp://localhost:24": "none",
		"smtp://mail.contoso.local:25": "opportunistic", "smtp://192.0.2.7:25": "opportunistic",
	} {
		if got := defaultStartTLS(target); got != want {
			t.Errorf("%s: %s, want %s", target, got, want)
		}
	}
}

func TestSecretNotInSyntaxError(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{`hunter2secret`, ":10: account.password: not a valid TOML value (not shown"},
		{`hunter2 secret`, ":10: account.password: "},
		{`1hunter2secret`, ":10: account.password: "},
		{`"hunter2secret`, ":10: account.password: "},
		{`'''hunter2secret`, "account.password: "},
	} {
		text := strings.Replace(good, `password_file = "DIR/office.pass"`, "password = "+c.value, 1)
		path := write(t, text)
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.value, err, c.want)
			continue
		}
		for _, part := range []string{"hunter", "1h", "secret\""} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("%s: the error shows the password: %v", c.value, err)
			}
		}
	}
	// Other keys keep the parser's words, which help.
	_, err := Load(write(t, strings.Replace(good, `interval = "2m"`, `interval = 2m`, 1)))
	if err == nil || !strings.Contains(err.Error(), ":11: ") || strings.Contains(err.Error(), "not shown") {
		t.Fatalf("got %v", err)
	}
}

func TestSecretFileModes(t *testing.T) {
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o640, true}, {0o400, true}, {0o644, false}, {0o604, false}, {0o602, false}} {
		path := write(t, good)
		pass := filepath.Join(filepath.Dir(path), "office.pass")
		os.Chmod(pass, c.mode)
		_, err := Load(path)
		if c.ok != (err == nil) {
			t.Errorf("mode %04o: got %v", c.mode, err)
		}
		if err != nil && !strings.Contains(err.Error(), ":10: account.office.password_file: "+pass+" is readable or writable by every user") {
			t.Errorf("mode %04o: error does not name file, line and key: %v", c.mode, err)
		}
	}
	path := write(t, good+"password_file = \"DIR/deliver.pass\"\n")
	dpass := filepath.Join(filepath.Dir(path), "deliver.pass")
	os.WriteFile(dpass, []byte("x\n"), 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "deliver.password_file: "+dpass+" is readable") {
		t.Errorf("deliver: got %v", err)
	}
	os.Chmod(dpass, 0o600)
	if _, err := Load(path); err != nil {
		t.Errorf("deliver 0600: %v", err)
	}
	os.Remove(dpass)
	os.Mkdir(dpass, 0o700)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Errorf("deliver folder: got %v", err)
	}
}

// [log] eventlog_level defaults to warn and takes only a level name.
func TestEventLogLevel(t *testing.T) {
	c, err := Load(write(t, good))
	if err != nil || c.Log.EventLogLevel != "warn" {
		t.Fatalf("default eventlog_level %q (%v)", c.Log.EventLogLevel, err)
	}
	set := strings.Replace(good, `level = "debug"`, `level = "debug"`+"\neventlog_level = \"info\"", 1)
	if c, err := Load(write(t, set)); err != nil || c.Log.EventLogLevel != "info" {
		t.Fatalf("eventlog_level = info read as %+v (%v)", c, err)
	}
	bad := strings.Replace(good, `level = "debug"`, `level = "debug"`+"\neventlog_level = \"chatty\"", 1)
	path := write(t, bad)
	_, err = Load(path)
	if err == nil || !strings.Contains(err.Error(), path+":5: log.eventlog_level: \"chatty\" is not error, warn, info, debug or trace") {
		t.Fatalf("bad eventlog_level: %v", err)
	}
}

// password_command (mpop's passwordeval): the first line of its output
// is the password, read at each use; a failing command says so without
// its secrets; it counts as one of the password sources.
func TestPasswordCommand(t *testing.T) {
	cmd := func(c string) string {
		return strings.Replace(good, `password_file = "DIR/office.pass"`, "password_command = "+tomlLiteral(c), 1)
	}
	c, err := Load(write(t, cmd(`printf 'fr0m-store\nsecond line\n'`)))
	if err != nil {
		t.Fatal(err)
	}
	if pw, err := c.Account[0].Secret(); err != nil || pw != "fr0m-store" {
		t.Fatalf("secret %q %v", pw, err)
	}
	c, _ = Load(write(t, cmd(`echo 'vault: token ya29.a0AfH6SMBx3kQ-long expired' >&2; exit 4`)))
	if _, err := c.Account[0].Secret(); err == nil || !strings.Contains(err.Error(), "password_command: exit status 4: vault: token [redacted] expired") {
		t.Fatalf("failing command: %v", err)
	}
	c, _ = Load(write(t, cmd(`true`)))
	if _, err := c.Account[0].Secret(); err == nil || !strings.Contains(err.Error(), "printed no password") {
		t.Fatalf("silent command: %v", err)
	}
	both := strings.Replace(good, `password_file = "DIR/office.pass"`, `password_file = "DIR/office.pass"`+"\npassword_command = \"pass show isp\"", 1)
	if _, err := Load(write(t, both)); err == nil || !strings.Contains(err.Error(), "set only one of password, password_file, password_env and password_command") {
		t.Fatalf("two sources: %v", err)
	}
	dl := good + "username = \"relay\"\npassword_command = \"printf relay-pw\"\n"
	c, err = Load(write(t, dl))
	if err != nil {
		t.Fatal(err)
	}
	if pw, err := c.Deliver.Secret(); err != nil || pw != "relay-pw" {
		t.Fatalf("deliver secret %q %v", pw, err)
	}
}

func tomlLiteral(s string) string { return "'''" + s + "'''" } // a TOML literal string
