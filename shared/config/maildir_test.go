package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMaildirPath(t *testing.T) {
	for rcpt, want := range map[string]string{
		"Alice@Contoso.local": "/m/contoso.local/alice",
		"../x@y":              "/m/y/_.._x",
		"a/b@c":               "/m/c/a_b",
	} {
		if got := MaildirPath("/m/{domain}/{user}", rcpt); got != want {
			t.Errorf("%s: got %s want %s", rcpt, got, want)
		}
	}
}

// Only the addresses the config names, or every one with maildir_create,
// get a Maildir made for them; others must have one already.
func TestHasMaildir(t *testing.T) {
	multi := strings.Replace(good, `deliver_to = ["alice@contoso.local"]`,
		"local_domains = [\"contoso.local\"]\nunrouted_to = \"postmaster@contoso.local\"\n[account.aliases]\n\"info@contoso.local\" = \"bob@contoso.local\"", 1)
	c, err := Load(write(t, multi))
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(c.Deliver.MaildirPattern())
	os.MkdirAll(filepath.Join(root, "carol", "new"), 0o700)
	for rcpt, want := range map[string]bool{
		"bob@contoso.local":        true, // an alias's target
		"Postmaster@contoso.local": true, // unrouted_to
		"carol@contoso.local":      true, // her Maildir exists
		"postmaster":               true, // deliver.postmaster, who gets the DSNs
		"random@contoso.local":     false,
	} {
		if got := c.HasMaildir("", rcpt); got != want {
			t.Errorf("%s: HasMaildir = %v, want %v", rcpt, got, want)
		}
	}
	c.Deliver.MaildirCreate = true
	if !c.HasMaildir("", "random@contoso.local") {
		t.Error("maildir_create = true still refuses")
	}
	c.Deliver.Target = "smtp://127.0.0.1:25"
	c.Deliver.MaildirCreate = false
	if !c.HasMaildir("", "random@contoso.local") {
		t.Error("an SMTP target refuses an address")
	}
}

// On Windows a maildir:// target names its drive as a file URL does.
func TestMaildirPatternOnWindows(t *testing.T) {
	for target, want := range map[string]string{
		"maildir:///C:/Mail/{user}":          `C:\Mail\{user}`,
		"maildir:///d:/popspool/mail/{user}": `d:\popspool\mail\{user}`,
		"maildir:///var/mail/{user}":         `\var\mail\{user}`,
		"smtp://127.0.0.1:25":                "",
	} {
		if got := maildirPattern(target, "windows"); got != want {
			t.Errorf("%s: %q, want %q", target, got, want)
		}
	}
	if got := maildirPattern("maildir:///var/mail/{user}", "linux"); got != "/var/mail/{user}" {
		t.Errorf("linux: %q", got)
	}
	if hasDrive(`\var\mail`) || !hasDrive(`C:\Mail`) {
		t.Error("hasDrive")
	}
}
