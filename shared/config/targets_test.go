package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// office is a mixed office: the sales mailbox to Exchange over SMTP with
// AUTH, a shared mailbox into Dovecot over LMTP, an archive into a
// Maildir, the rest to [deliver]'s Postfix.
const office = `spool = "DIR/spool"

[[account]]
name = "sales"
server = "pop.example.net"
username = "sales@example.net"
password_file = "DIR/office.pass"
deliver_to = ["sales@contoso.local"]
target = "exchange"

[[account]]
name = "shared"
server = "pop.example.net"
username = "shared@example.net"
password_file = "DIR/office.pass"
deliver_to = ["team@contoso.local"]
target = "dovecot"

[[account]]
name = "archive"
server = "pop.example.net"
username = "archive@example.net"
password_file = "DIR/office.pass"
deliver_to = ["archive@contoso.local"]
target = "archive"

[[account]]
name = "office"
server = "pop.example.net"
username = "office@example.net"
password_file = "DIR/office.pass"
deliver_to = ["alice@contoso.local"]

[deliver]
target = "smtp://127.0.0.1:25"
helo = "gw.contoso.local"
retry = ["1m", "10m"]
expire = "72h"
connections = 6
username = "relay"
password_file = "DIR/office.pass"
postmaster = "postmaster@contoso.local"

[target.exchange]
url = "smtp://exchange.contoso.local:587"
starttls = "required"
username = "popspool@contoso.local"
password_file = "DIR/office.pass"
expire = "24h"

[target.dovecot]
url = "lmtp://127.0.0.1:24"
connections = 2
dsn = false
pipelining = false

[target.archive]
url = "maildir://DIR/archive/{user}"
maildir_create = true
`

func TestTargetsResolve(t *testing.T) {
	c, err := Load(write(t, office))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.TargetNames(), ","); got != "default,archive,dovecot,exchange" {
		t.Fatalf("names %s", got)
	}
	ex, ok := c.DeliverFor("exchange")
	if !ok || ex.Target != "smtp://exchange.contoso.local:587" || ex.StartTLS != "required" || ex.Username != "popspool@contoso.local" ||
		ex.Expire.D() != 24*time.Hour || ex.Helo != "gw.contoso.local" || ex.Connections != 6 || len(ex.Retry) != 2 || ex.Postmaster != "postmaster@contoso.local" {
		t.Fatalf("exchange %+v", ex)
	}
	dv, _ := c.DeliverFor("dovecot")
	// The server's keys are never inherited: no AUTH for Dovecot, and
	// starttls defaults by its own URL (loopback: none).
	if dv.Username != "" || dv.PasswordFile != "" || dv.StartTLS != "none" || dv.Connections != 2 || dv.SendORCPT() || dv.Expire.D() != 72*time.Hour || dv.Pipelines() {
		t.Fatalf("dovecot %+v", dv)
	}
	if !ex.Pipelines() || !c.Deliver.Pipelines() {
		t.Fatal("pipelining = false of [target.dovecot] reached another target")
	}
	ar, _ := c.DeliverFor("archive")
	if ar.MaildirPattern() == "" || !c.MaildirMayCreateAt(ar, "anyone@contoso.local") || c.MaildirMayCreate("anyone@contoso.local") {
		t.Fatalf("archive %+v: maildir_create belongs to the archive", ar)
	}
	if d, ok := c.DeliverFor(""); !ok || d != &c.Deliver {
		t.Fatal(`"" is not [deliver]`)
	}
	if d, ok := c.DeliverFor(DefaultTarget); !ok || d != &c.Deliver {
		t.Fatal(`"default" is not [deliver]`)
	}
	if _, ok := c.DeliverFor("nowhere"); ok {
		t.Fatal("an unknown target was found")
	}
	sales, _ := c.AccountNamed("sales")
	office, _ := c.AccountNamed("office")
	if sales.TargetOf() != "exchange" || office.TargetOf() != DefaultTarget {
		t.Fatalf("accounts' targets %s %s", sales.TargetOf(), office.TargetOf())
	}
}

// Every mistake in a target table or an account's target key is named by
// file, line and key, all at once.
func TestTargetErrorsNameFileLineKey(t *testing.T) {
	text := office + `
[target.broken]
url = "ftp://files.contoso.local"
starttls = "sometimes"
retry = ["-1m"]
connections = 500
helo = "two words"

[target.empty]
connections = 1

[target.default]
url = "smtp://127.0.0.1:2525"

[target.Mixed]
url = "smtp://127.0.0.1:2526"

[target.copied]
target = "smtp://127.0.0.1:2527"
url = "smtp://127.0.0.1:2527"
postmaster = "pm@contoso.local"
`
	text = strings.Replace(text, `target = "dovecot"`, `target = "dovcot"`, 1)
	path := write(t, text)
	_, err := Load(path)
	if err == nil {
		t.Fatal("loaded")
	}
	lines := strings.Split(text, "\n")
	lineOf := func(prefix string, after int) int {
		for i := after; i < len(lines); i++ {
			if strings.HasPrefix(lines[i], prefix) {
				return i + 1
			}
		}
		t.Fatalf("no line %q", prefix)
		return 0
	}
	broken := lineOf("[target.broken]", 0)
	copied := lineOf("[target.copied]", 0)
	want := []string{
		fmt.Sprintf("%s:%d: account.shared.target: no [target.dovcot] table in this file (targets: default, Mixed, archive, broken, copied, dovecot, empty, exchange)", path, lineOf(`target = "dovcot"`, 0)),
		fmt.Sprintf("%s:%d: target.broken.url: \"ftp://files.contoso.local\": scheme must be", path, lineOf("url", broken)),
		fmt.Sprintf("%s:%d: target.broken.starttls: \"sometimes\" is not", path, lineOf("starttls", broken)),
		fmt.Sprintf("%s:%d: target.broken.retry: intervals must be positive", path, lineOf("retry", broken)),
		fmt.Sprintf("%s:%d: target.broken.connections: must be between 1 and 100", path, lineOf("connections", broken)),
		fmt.Sprintf("%s:%d: target.broken.helo:", path, lineOf("helo", broken)),
		fmt.Sprintf("%s:%d: target.empty.url: missing", path, lineOf("[target.empty]", 0)),
		fmt.Sprintf("%s:%d: target.default: \"default\" is the name of the [deliver] target", path, lineOf("[target.default]", 0)),
		fmt.Sprintf("%s:%d: target.Mixed: \"Mixed\" must be made of", path, lineOf("[target.Mixed]", 0)),
		fmt.Sprintf("%s:%d: target.copied.target: unknown key: a [target.copied] table names its server with url", path, lineOf("target", copied)),
		fmt.Sprintf("%s:%d: target.copied.postmaster: unknown key: set in [deliver] only", path, lineOf("postmaster", copied)),
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in\n%v", w, err)
		}
	}
}

// A config without [target.NAME] tables, as before this feature, loads
// as it did: one target, [deliver]'s.
func TestNoTargetsAsBefore(t *testing.T) {
	c, err := Load(write(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.TargetNames(), ","); got != DefaultTarget {
		t.Fatalf("targets %s", got)
	}
	if c.Account[0].TargetOf() != DefaultTarget {
		t.Fatal(c.Account[0].TargetOf())
	}
}

// A target table's secret source is checked as [deliver]'s is.
func TestTargetPasswordFileChecked(t *testing.T) {
	text := office + `
[target.relay]
url = "smtp://relay.contoso.local:25"
username = "gw"
password_file = "DIR/missing.pass"
password_env = "POPSPOOL_NOT_SET_ANYWHERE"
`
	_, err := Load(write(t, text))
	if err == nil || !strings.Contains(err.Error(), "target.relay.password_file: set only one of") {
		t.Fatalf("err %v", err)
	}
}
