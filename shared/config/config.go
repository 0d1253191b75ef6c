// Package config reads popspool's one TOML file. Each daemon reads the parts
// it needs; unknown keys and bad values are errors, all reported at once as
// "file:line: key: what is wrong" so an operator can fix them in one pass.
package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPath is used when neither -config nor $POPSPOOL_CONFIG is given.
const DefaultPath = "/etc/popspool/popspool.toml"

// Config is the whole file.
type Config struct {
	File    string    `toml:"-"`
	Spool   string    `toml:"spool"`
	Rescan  Duration  `toml:"rescan"`
	Log     Log       `toml:"log"`
	Fetch   Fetch     `toml:"fetch"`
	Account []Account `toml:"account"`
	Deliver Deliver   `toml:"deliver"`
	// Targets are the [target.NAME] tables: delivery targets besides
	// [deliver]'s, by name (targets.go).
	Targets map[string]*Target `toml:"target"`
	Filter  Filter             `toml:"filter"`
	Metrics Metrics            `toml:"metrics"` // optional Prometheus endpoints: metrics.go

	resolved map[string]*Deliver // Targets resolved against Deliver
}

// Log configures the daemons' logs.
type Log struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
	// EventLogLevel is the lowest level a service writes to the Windows
	// Event Log, on top of Level (default warn: no entry per message).
	EventLogLevel string `toml:"eventlog_level"`
}

// Account is one remote POP3 mailbox.
type Account struct {
	Name           string `toml:"name"`
	Server         string `toml:"server"`
	TLS            string `toml:"tls"`
	CAFile         string `toml:"ca_file"`
	AllowPlaintext bool   `toml:"allow_plaintext"`
	Username       string `toml:"username"`
	Password       string `toml:"password"`
	PasswordFile   string `toml:"password_file"`
	PasswordEnv    string `toml:"password_env"`
	// PasswordCommand prints the password on its first line of output
	// (a secret store: pass, secret-tool, a vault client); run before
	// each login.
	PasswordCommand string   `toml:"password_command"`
	Interval        Duration `toml:"interval"`
	Timeout         Duration `toml:"timeout"`
	Keep            bool     `toml:"keep"`
	KeepDays        int      `toml:"keep_days"`
	MaxSize         Size     `toml:"max_size"`
	// MaxListing bounds how many messages of the mailbox one session
	// takes in (and so the memory of its LIST and UIDL listings); the
	// rest wait for the next sessions. Default 100,000.
	MaxListing int `toml:"max_listing"`
	// MaxMessages and MaxBytes bound what one poll downloads (POPcon's
	// "max emails per pass"); 0, the default, is no limit. The messages
	// past a limit stay on the server for the next polls, oldest first.
	// MaxBytes bounds the sum of the messages' listed sizes, but a poll
	// always takes its first message, however large (up to max_size), so
	// no mailbox is stuck behind one big message.
	MaxMessages int  `toml:"max_messages"`
	MaxBytes    Size `toml:"max_bytes"`
	// Target names the [target.NAME] table this account's mail is
	// delivered to; "" is [deliver]'s target (DefaultTarget).
	Target string `toml:"target"`
	// Pipelining = false makes fetchd send one command at a time, for a
	// server that offers PIPELINING (RFC 2449 §6.6) and mishandles it;
	// by default RETRs are sent ahead and DELEs together whenever it is
	// offered.
	Pipelining   *bool `toml:"pipelining"`
	FetchOptions       // auth, token_file, token_command, oversize: fetch.go
	Routing            // deliver_to, or multi-drop: routing.go
}

// Pipelines reports whether fetchd pipelines where the server offers it.
func (a *Account) Pipelines() bool { return a.Pipelining == nil || *a.Pipelining }

// Fetch configures fetchd as a whole (the [fetch] table).
type Fetch struct {
	// Sessions is how many POP3 sessions fetchd runs at once, over all
	// accounts (default 4, 1 to 256).
	Sessions int `toml:"sessions"`
}

// DefaultSessions is [fetch] sessions when it is not set.
const DefaultSessions = 4

// Deliver configures deliverd.
type Deliver struct {
	Target       string `toml:"target"`
	Helo         string `toml:"helo"`
	StartTLS     string `toml:"starttls"`
	CAFile       string `toml:"ca_file"`
	Username     string `toml:"username"`
	PasswordFile string `toml:"password_file"`
	PasswordEnv  string `toml:"password_env"`
	// PasswordCommand, as for an account: run before each AUTH.
	PasswordCommand string     `toml:"password_command"`
	Retry           []Duration `toml:"retry"`
	Expire          Duration   `toml:"expire"`
	Postmaster      string     `toml:"postmaster"`
	Connections     int        `toml:"connections"`
	// MaildirCreate lets a maildir:// target create the Maildir of any
	// recipient; by default only those the config names are created
	// (MaildirMayCreate).
	MaildirCreate bool `toml:"maildir_create"`
	// BounceTo says who gets a delivery status notification: "postmaster"
	// (default: fetched mail's senders are outside and often forged),
	// "sender" or "both". Never the null sender, never for a bounce.
	BounceTo string `toml:"bounce_to"`
	// DSN = false stops RCPT from carrying ORCPT (RFC 3461), the original
	// recipient rewrited recorded in the envelope; by default it is sent
	// whenever the server offers DSN.
	DSN *bool `toml:"dsn"`
	// Pipelining = false makes deliverd wait for each reply before the
	// next command, for a server (or a firewall in front of it) that
	// offers PIPELINING (RFC 2920) and mishandles it; by default MAIL,
	// RCPT and DATA go out together whenever it is offered.
	Pipelining *bool `toml:"pipelining"`
}

// SendORCPT reports whether RCPT carries ORCPT where the server offers DSN.
func (d *Deliver) SendORCPT() bool { return d.DSN == nil || *d.DSN }

// Pipelines reports whether deliverd pipelines where the server offers it.
func (d *Deliver) Pipelines() bool { return d.Pipelining == nil || *d.Pipelining }

// Path returns the config file to read: flag, then $POPSPOOL_CONFIG, then
// DefaultPath.
func Path(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("POPSPOOL_CONFIG"); env != "" {
		return env
	}
	return DefaultPath
}

// Load reads, defaults and validates the file. The error, if any, lists
// every problem, one per line.
func Load(path string) (*Config, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c := &Config{File: path}
	md, err := toml.Decode(string(text), c)
	if err != nil {
		return nil, decodeError(path, string(text), err)
	}
	p := &problems{file: path, lines: locate(string(text))}
	for _, k := range md.Undecoded() {
		msg := "unknown key (misspelt, or in the wrong section?)"
		if hint := unknownKeyHint(k); hint != "" {
			msg = "unknown key: " + hint
		}
		p.addKey(k, msg)
	}
	c.defaults()
	c.validate(p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeError names the file, line and key of a TOML error. The parser's
// message may quote the start of the value ("expected value but found
// \"hunter\""): on a line that sets a secret it is replaced, so a
// password never reaches a log or a terminal through a typo.
func decodeError(path, text string, err error) error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", path, err)
	}
	key, msg := pe.LastKey, pe.Message
	if k := lineKey(text, pe.Position.Line); k != "" && secretKey(k) {
		if key != k && !strings.HasSuffix(key, "."+k) {
			key = strings.TrimPrefix(key+"."+k, ".")
		}
		msg = "not a valid TOML value (not shown: it is a secret); write it in quotes, like " + k + ` = "..."`
	}
	if key == "" {
		key = "syntax"
	}
	return fmt.Errorf("%s:%d: %s: %s", path, pe.Position.Line, key, msg)
}

// lineKey returns the bare key a TOML line sets ("password" in
// `  password = x`), or "".
func lineKey(text string, line int) string {
	lines := strings.Split(text, "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	k, _, ok := strings.Cut(lines[line-1], "=")
	if !ok {
		return ""
	}
	k = strings.Trim(strings.TrimSpace(k), `"'`)
	if i := strings.LastIndexByte(k, '.'); i >= 0 {
		k = k[i+1:]
	}
	return k
}

// secretKey reports whether a config key holds a secret itself (not the
// name of a file or variable holding it).
func secretKey(k string) bool {
	return k == "password" || k == "token" || strings.HasSuffix(k, "secret")
}

// problems collects validation errors with their lines.
type problems struct {
	file  string
	lines *lines
	list  []string
}

func (p *problems) add(key, format string, args ...any) {
	line := p.lines.find(key)
	p.list = append(p.list, fmt.Sprintf("%s:%d: %s: %s", p.file, line, key, fmt.Sprintf(format, args...)))
}

func (p *problems) addKey(k toml.Key, msg string) {
	p.add(strings.Join(k, "."), "%s", msg)
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return errors.New(strings.Join(p.list, "\n"))
}

// Duration is a time.Duration written as "5m", "48h".
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"90s\", \"5m\" or \"48h\"", b)
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
