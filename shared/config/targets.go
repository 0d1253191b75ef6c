package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// DefaultTarget names the [deliver] table's own target: the one of every
// account without a target key, and of every spool file without an
// X-Popspool-Target line.
const DefaultTarget = "default"

// Target is a [target.NAME] table: a delivery target of its own, which an
// account names with target = "NAME". The keys that describe the server
// (url, starttls, ca_file, username, the password's source,
// maildir_create) belong to the table and are never taken from [deliver]:
// the credentials for Exchange must not reach the Dovecot next to it. The
// keys of how deliverd uses the server (helo, retry, expire, connections,
// dsn, pipelining) default to [deliver]'s.
type Target struct {
	URL             string     `toml:"url"`
	Helo            string     `toml:"helo"`
	StartTLS        string     `toml:"starttls"`
	CAFile          string     `toml:"ca_file"`
	Username        string     `toml:"username"`
	PasswordFile    string     `toml:"password_file"`
	PasswordEnv     string     `toml:"password_env"`
	PasswordCommand string     `toml:"password_command"`
	Retry           []Duration `toml:"retry"`
	Expire          Duration   `toml:"expire"`
	Connections     int        `toml:"connections"`
	MaildirCreate   bool       `toml:"maildir_create"`
	DSN             *bool      `toml:"dsn"`
	Pipelining      *bool      `toml:"pipelining"`
}

// resolve is t as a whole [deliver] table: its own keys, and base's for
// the keys it leaves out that may be inherited. Postmaster and bounce_to
// are always base's: DSNs are the office's policy, not a server's.
func (t *Target) resolve(base *Deliver) *Deliver {
	d := *base
	d.Target, d.StartTLS, d.CAFile = t.URL, t.StartTLS, t.CAFile
	d.Username, d.PasswordFile, d.PasswordEnv, d.PasswordCommand = t.Username, t.PasswordFile, t.PasswordEnv, t.PasswordCommand
	d.MaildirCreate = t.MaildirCreate
	if d.StartTLS == "" {
		d.StartTLS = defaultStartTLS(t.URL)
	}
	if t.Helo != "" {
		d.Helo = t.Helo
	}
	if len(t.Retry) > 0 {
		d.Retry = t.Retry
	}
	if t.Expire != 0 {
		d.Expire = t.Expire
	}
	if t.Connections != 0 {
		d.Connections = t.Connections
	}
	if t.DSN != nil {
		d.DSN = t.DSN
	}
	if t.Pipelining != nil {
		d.Pipelining = t.Pipelining
	}
	return &d
}

// resolveTargets makes the resolved [deliver] table of each named target;
// after the defaults of [deliver].
func (c *Config) resolveTargets() {
	c.resolved = map[string]*Deliver{}
	for name, t := range c.Targets {
		c.resolved[name] = t.resolve(&c.Deliver)
	}
}

// DeliverFor returns the [deliver] table of the target called name, the
// named target's resolved against [deliver] (DefaultTarget and "" are
// [deliver] itself), and whether the config has that target.
func (c *Config) DeliverFor(name string) (*Deliver, bool) {
	if name == "" || name == DefaultTarget {
		return &c.Deliver, true
	}
	d, ok := c.resolved[name]
	return d, ok
}

// TargetNames returns the names of the configured targets: DefaultTarget
// first, then the [target.NAME] tables in name order.
func (c *Config) TargetNames() []string {
	names := []string{DefaultTarget}
	for _, name := range slices.Sorted(maps.Keys(c.Targets)) {
		if name != DefaultTarget {
			names = append(names, name)
		}
	}
	return names
}

func (c *Config) validateTargets(p *problems) {
	for _, name := range slices.Sorted(maps.Keys(c.Targets)) {
		t, key := c.Targets[name], "target."+name
		switch {
		case name == DefaultTarget:
			p.add(key, "%q is the name of the [deliver] target; call this one something else", name)
		case !accountNameRe.MatchString(name):
			p.add(key, "%q must be made of a-z, 0-9, '.', '_' and '-'", name)
		}
		if t.URL == "" {
			p.add(key+".url", "missing: the target's URL, such as smtp://exchange.contoso.local:25, lmtp://127.0.0.1:24 or maildir:///srv/archive/{user}")
			continue
		}
		d := c.resolved[name]
		d.validateServer(p, key, key+".url")
		t.validatePolicy(p, key)
	}
}

// validatePolicy checks the keys the table sets itself; what it inherits
// was checked in [deliver].
func (t *Target) validatePolicy(p *problems, key string) {
	for _, r := range t.Retry {
		if r.D() <= 0 {
			p.add(key+".retry", "intervals must be positive")
		}
	}
	if t.Expire.D() < 0 {
		p.add(key+".expire", "must be positive")
	}
	if t.Connections < 0 || t.Connections > 100 {
		p.add(key+".connections", "must be between 1 and 100")
	}
	if strings.ContainsAny(t.Helo, " \t\r\n") {
		p.add(key+".helo", "%q: a host name has no spaces", t.Helo)
	}
}

// validateAccountTarget checks that an account's target is configured.
func (c *Config) validateAccountTarget(p *problems, key string, a *Account) {
	if a.Target == "" {
		return
	}
	if _, ok := c.DeliverFor(a.Target); !ok {
		p.add(key+".target", "no [target.%s] table in this file (targets: %s)", a.Target, strings.Join(c.TargetNames(), ", "))
	}
}

// TargetOf returns the name of the target an account's mail goes to:
// its target key, else DefaultTarget.
func (a *Account) TargetOf() string {
	if a.Target == "" {
		return DefaultTarget
	}
	return a.Target
}

// unknownKeyHint explains an unknown key of a [target.NAME] table that
// belongs elsewhere; "" for any other key.
func unknownKeyHint(k toml.Key) string {
	if len(k) != 3 || k[0] != "target" {
		return ""
	}
	switch k[2] {
	case "target":
		return fmt.Sprintf("a [target.%s] table names its server with url = \"...\"", k[1])
	case "postmaster", "bounce_to":
		return "set in [deliver] only: the DSNs of every target follow one policy and go out through the default target"
	}
	return ""
}
