package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"
)

var accountNameRe = regexp.MustCompile(`^[a-z0-9._-]+$`)

func (c *Config) defaults() {
	if c.Spool == "" {
		c.Spool = "/var/spool/popspool"
	}
	if c.Rescan == 0 {
		c.Rescan = Duration(30 * time.Second)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Log.EventLogLevel == "" {
		c.Log.EventLogLevel = "warn"
	}
	if c.Fetch.Sessions == 0 {
		c.Fetch.Sessions = DefaultSessions
	}
	for i := range c.Account {
		a := &c.Account[i]
		if a.TLS == "" {
			a.TLS = "implicit"
		}
		if a.Interval == 0 {
			a.Interval = Duration(5 * time.Minute)
		}
		if a.Timeout == 0 {
			a.Timeout = Duration(60 * time.Second)
		}
		if a.MaxSize == 0 {
			a.MaxSize = 50 << 20
		}
		if a.MaxListing == 0 {
			a.MaxListing = DefaultMaxListing
		}
		a.FetchOptions.defaults()
	}
	c.Filter.defaults()
	d := &c.Deliver
	if d.Target == "" {
		d.Target = "smtp://127.0.0.1:25"
	}
	if len(d.Retry) == 0 {
		d.Retry = []Duration{Duration(time.Minute), Duration(5 * time.Minute), Duration(15 * time.Minute), Duration(time.Hour)}
	}
	if d.Expire == 0 {
		d.Expire = Duration(48 * time.Hour)
	}
	if d.Postmaster == "" {
		d.Postmaster = "postmaster"
	}
	if d.StartTLS == "" {
		d.StartTLS = defaultStartTLS(d.Target)
	}
	if d.Connections == 0 {
		d.Connections = 4
	}
	if d.BounceTo == "" {
		d.BounceTo = "postmaster"
	}
	c.resolveTargets()
}

func (c *Config) validate(p *problems) {
	if c.Rescan.D() < 0 {
		p.add("rescan", "must be positive")
	}
	if !oneOf(c.Log.Level, "error", "warn", "info", "debug", "trace") {
		p.add("log.level", "%q is not error, warn, info, debug or trace", c.Log.Level)
	}
	if !oneOf(c.Log.EventLogLevel, "error", "warn", "info", "debug", "trace") {
		p.add("log.eventlog_level", "%q is not error, warn, info, debug or trace", c.Log.EventLogLevel)
	}
	if !oneOf(c.Log.Format, "json", "console") {
		p.add("log.format", "%q is not json or console", c.Log.Format)
	}
	if c.Fetch.Sessions < 1 || c.Fetch.Sessions > 256 {
		p.add("fetch.sessions", "must be from 1 to 256")
	}
	seen := map[string]bool{}
	for i := range c.Account {
		a := &c.Account[i]
		key := fmt.Sprintf("account.%d", i)
		if accountNameRe.MatchString(a.Name) {
			key = "account." + a.Name
		}
		if seen[a.Name] {
			p.add(key+".name", "%q is used by another account", a.Name)
		}
		seen[a.Name] = true
		a.validate(p, key, c.File)
		c.validateAccountTarget(p, key, a)
	}
	c.Deliver.validate(p)
	c.validateTargets(p)
	c.Filter.validate(p)
	c.Metrics.validate(p)
}

func (a *Account) validate(p *problems, key, file string) {
	if !accountNameRe.MatchString(a.Name) {
		p.add(key+".name", "%q must be made of a-z, 0-9, '.', '_' and '-'", a.Name)
	}
	if a.Server == "" {
		p.add(key+".server", "missing (host:port of the POP3 server)")
	} else if err := a.fixServer(); err != nil {
		p.add(key+".server", "%v", err)
	}
	switch a.TLS {
	case "implicit", "starttls":
	case "none":
		if !a.AllowPlaintext {
			p.add(key+".tls", `"none" sends the password in clear; also set allow_plaintext = true if that is really wanted`)
		}
	default:
		p.add(key+".tls", "%q is not implicit, starttls or none", a.TLS)
	}
	if a.CAFile != "" {
		if _, err := os.Stat(a.CAFile); err != nil {
			p.add(key+".ca_file", "%v", err)
		}
	}
	if a.Username == "" {
		p.add(key+".username", "missing")
	}
	a.validateFetch(p, key, file)
	if a.Interval.D() < time.Second {
		p.add(key+".interval", "must be at least 1s")
	}
	if a.Timeout.D() < time.Second {
		p.add(key+".timeout", "must be at least 1s")
	}
	if a.KeepDays < 0 || (a.KeepDays > 0 && !a.Keep) {
		p.add(key+".keep_days", "needs keep = true and a positive number of days")
	}
	if a.MaxSize < 0 {
		p.add(key+".max_size", "must be positive")
	}
	if a.MaxListing < 100 || a.MaxListing > 1<<20 {
		p.add(key+".max_listing", "must be from 100 to 1048576")
	}
	if a.MaxMessages < 0 {
		p.add(key+".max_messages", "must be 0 (no limit) or more")
	}
	if a.MaxBytes < 0 {
		p.add(key+".max_bytes", "must be 0 (no limit) or more")
	}
	a.validateRouting(p, key)
}

// defaultStartTLS is "none" for a target on this machine (traffic that
// never leaves the host gains nothing from TLS, and local servers commonly
// offer STARTTLS with a self-signed certificate, which would fail
// verification), else "opportunistic".
func defaultStartTLS(target string) string {
	u, err := url.Parse(target)
	if err != nil {
		return "opportunistic"
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return "none"
	}
	return "opportunistic"
}

// fixServer adds the default port (995 with implicit TLS, else 110).
func (a *Account) fixServer() error {
	if _, _, err := net.SplitHostPort(a.Server); err == nil {
		return nil
	}
	if strings.Contains(a.Server, "/") || strings.Contains(a.Server, " ") {
		return fmt.Errorf("%q is not host:port", a.Server)
	}
	port := "110"
	if a.TLS == "implicit" || a.TLS == "" {
		port = "995"
	}
	a.Server = net.JoinHostPort(strings.Trim(a.Server, "[]"), port)
	return nil
}

// validatePickup checks a pickup:// target: an absolute folder that
// exists (the IIS SMTP or Exchange Transport service makes it; deliverd
// never does).
func (d *Deliver) validatePickup(p *problems, key string) {
	dir := d.PickupDir()
	switch {
	case dir == "":
		p.add(key, "%q has no path", d.Target)
	case runtime.GOOS == "windows" && !hasDrive(dir):
		p.add(key, "%q names no drive: write pickup:///C:/inetpub/mailroot/Pickup (a service's current drive is not the one you expect)", d.Target)
	default:
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			p.add(key, "pickup folder %s does not exist or is not a folder; the IIS SMTP or Exchange Transport service makes it", dir)
		}
	}
}

func (d *Deliver) validate(p *problems) {
	d.validateServer(p, "deliver", "deliver.target")
	d.validatePolicy(p, "deliver")
	if !oneOf(d.BounceTo, "postmaster", "sender", "both") {
		p.add("deliver.bounce_to", "%q is not postmaster, sender or both", d.BounceTo)
	}
	if d.Postmaster != "postmaster" && !ValidAddress(d.Postmaster) {
		p.add("deliver.postmaster", "%q is not an address like postmaster@contoso.local", d.Postmaster)
	}
}

// validateServer checks the keys that describe the server: its URL (at
// urlKey), STARTTLS and the AUTH password's source, of a [deliver] table
// or a [target.NAME] table (section).
func (d *Deliver) validateServer(p *problems, section, urlKey string) {
	u, err := url.Parse(d.Target)
	if err != nil {
		p.add(urlKey, "%v", err)
		return
	}
	switch u.Scheme {
	case "smtp", "smtps", "lmtp":
		if u.Host == "" {
			p.add(urlKey, "%q has no host:port", d.Target)
		}
	case "pickup":
		d.validatePickup(p, urlKey)
	case "lmtp+unix", "maildir":
		if u.Path == "" {
			p.add(urlKey, "%q has no path", d.Target)
		}
		if u.Scheme == "maildir" && runtime.GOOS == "windows" && !hasDrive(d.MaildirPattern()) {
			p.add(urlKey, "%q names no drive: write maildir:///C:/Mail/{user} (a service's current drive is not the one you expect)", d.Target)
		}
	default:
		p.add(urlKey, "%q: scheme must be smtp, smtps, lmtp, lmtp+unix, maildir or pickup", d.Target)
	}
	if !oneOf(d.StartTLS, "opportunistic", "required", "none") {
		p.add(section+".starttls", "%q is not opportunistic, required or none", d.StartTLS)
	}
	validateSecret(p, section, "", d.secretSource(), false)
}

// validatePolicy checks the keys of how deliverd uses a target: retry,
// expire, connections and helo.
func (d *Deliver) validatePolicy(p *problems, section string) {
	for _, r := range d.Retry {
		if r.D() <= 0 {
			p.add(section+".retry", "intervals must be positive")
		}
	}
	if d.Expire.D() <= 0 {
		p.add(section+".expire", "must be positive")
	}
	if d.Connections < 1 || d.Connections > 100 {
		p.add(section+".connections", "must be between 1 and 100")
	}
	if strings.ContainsAny(d.Helo, " \t\r\n") {
		p.add(section+".helo", "%q: a host name has no spaces", d.Helo)
	}
}

func validateSecret(p *problems, key, file string, s secretSource, required bool) {
	n := 0
	for _, v := range []string{s.inline, s.file, s.env, s.command} {
		if v != "" {
			n++
		}
	}
	switch {
	case n == 0 && required:
		p.add(key+".password_file", "missing: set password_file (or password_env, password_command)")
	case n > 1:
		p.add(key+".password_file", "set only one of password, password_file, password_env and password_command")
	case s.file != "":
		checkSecretFile(p, key+".password_file", s.file)
	case s.env != "":
		if os.Getenv(s.env) == "" {
			p.add(key+".password_env", "environment variable %s is not set", s.env)
		}
	case s.command != "":
		if strings.TrimSpace(s.command) == "" {
			p.add(key+".password_command", "is empty")
		}
	case s.inline != "":
		if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
			p.add(key+".password", "an inline password needs the config file to be readable by its owner only (chmod 600 %s); better use password_file", file)
		}
	}
}

// secretSource is where a password comes from: one of these is set.
type secretSource struct {
	inline, file, env, command string
}

// checkSecretFile reports a password or token file that cannot be read,
// or that every user of the machine may read: a secret must be readable
// by the daemon's user and at most its group (0640 root:popspool, as
// dist/popspool.toml.example shows), as fetchmail and ssh insist too.
// Windows keeps access in ACLs, which the mode bits do not show.
func checkSecretFile(p *problems, key, path string) {
	f, err := os.Open(path)
	if err != nil {
		p.add(key, "cannot read: %v", err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		p.add(key, "cannot read: %v", err)
		return
	}
	switch {
	case fi.IsDir():
		p.add(key, "%s is a folder, not a file", path)
	case runtime.GOOS != "windows" && fi.Mode().Perm()&0o006 != 0:
		p.add(key, "%s is readable or writable by every user of this machine (mode %04o): chmod o-rw %s (0600, or 0640 with the daemon's group)", path, fi.Mode().Perm(), path)
	}
}

// Secret returns the account's password, read afresh from its file,
// environment variable or command so a rotated password is picked up.
// Trailing line breaks of a password file are removed.
func (a *Account) Secret() (string, error) {
	return a.secretSource().read()
}

func (a *Account) secretSource() secretSource {
	return secretSource{a.Password, a.PasswordFile, a.PasswordEnv, a.PasswordCommand}
}

// Secret returns deliverd's AUTH password, or "" when none is configured.
func (d *Deliver) Secret() (string, error) {
	return d.secretSource().read()
}

func (d *Deliver) secretSource() secretSource {
	return secretSource{"", d.PasswordFile, d.PasswordEnv, d.PasswordCommand}
}

func (s secretSource) read() (string, error) {
	switch {
	case s.file != "":
		b, err := os.ReadFile(s.file)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case s.env != "":
		v := os.Getenv(s.env)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is empty", s.env)
		}
		return v, nil
	case s.command != "":
		out, err := RunHelper("password_command", s.command)
		if err != nil {
			return "", err
		}
		line, _, _ := strings.Cut(string(out), "\n")
		if line = strings.TrimRight(line, "\r"); line == "" {
			return "", errors.New("password_command printed no password (its first line of output is empty)")
		}
		return line, nil
	}
	return s.inline, nil
}

// DefaultMaxListing is an account's max_listing: 100,000 listing entries
// cost a session about 10 MiB; an ISP mailbox rarely holds a tenth of it.
const DefaultMaxListing = 100_000

// ValidAddress reports whether s looks like local@domain as a mail server
// takes it in MAIL FROM or RCPT TO: no spaces, angle brackets, control
// characters or invalid UTF-8, a local part of at most 64 octets and a
// path of at most 256 (RFC 5321 §4.5.3.1; UTF-8 as RFC 6531 allows).
func ValidAddress(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || at > 64 || len(s) > 254 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(" <>,;\"", r) {
			return false
		}
	}
	return true
}

func oneOf(s string, set ...string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

// AccountNamed returns the account named name.
func (c *Config) AccountNamed(name string) (*Account, bool) {
	for i := range c.Account {
		if c.Account[i].Name == name {
			return &c.Account[i], true
		}
	}
	return nil, false
}
