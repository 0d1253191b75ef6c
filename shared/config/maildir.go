package config

import (
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// MaildirPath returns the Maildir of rcpt under a maildir:// target's
// pattern such as /var/mail/{user} or /srv/mail/{domain}/{user}. The
// parts taken from the address are made safe as single path elements.
func MaildirPath(pattern, rcpt string) string {
	local, domain := rcpt, ""
	if at := strings.LastIndexByte(rcpt, '@'); at >= 0 {
		local, domain = rcpt[:at], rcpt[at+1:]
	}
	r := strings.NewReplacer("{user}", safeElement(local), "{domain}", safeElement(domain))
	return filepath.Clean(r.Replace(pattern))
}

// safeElement lower-cases s and keeps letters, digits and ".-_+",
// replacing anything else; a result that could climb out of its folder is
// escaped.
func safeElement(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', strings.ContainsRune(".-_+", r):
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '_'
	}, s)
	if s == "" || strings.HasPrefix(s, ".") {
		s = "_" + s
	}
	return s
}

// MaildirPattern is the path pattern of a maildir:// target, "" for
// another target. On Windows the URL names the drive as a file URL does,
// maildir:///C:/Mail/{user}, and the pattern is C:\Mail\{user}.
func (d *Deliver) MaildirPattern() string {
	return maildirPattern(d.Target, runtime.GOOS)
}

func maildirPattern(target, goos string) string { return filePath(target, "maildir", goos) }

// PickupDir is the folder of a pickup:// target, "" for another target.
// On Windows pickup:///C:/inetpub/mailroot/Pickup is
// C:\inetpub\mailroot\Pickup, as for maildir://.
func (d *Deliver) PickupDir() string { return filePath(d.Target, "pickup", runtime.GOOS) }

// filePath is the path of a target URL of scheme, "" for another scheme.
func filePath(target, scheme, goos string) string {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != scheme {
		return ""
	}
	if goos != "windows" {
		return u.Path
	}
	p := u.Path
	if hasDrive(strings.TrimPrefix(p, "/")) {
		p = p[1:]
	}
	return strings.ReplaceAll(p, "/", `\`)
}

// hasDrive reports whether a Windows path starts with a drive letter.
func hasDrive(p string) bool {
	return len(p) >= 3 && p[1] == ':' && (p[2] == '/' || p[2] == '\\') &&
		(p[0] >= 'A' && p[0] <= 'Z' || p[0] >= 'a' && p[0] <= 'z')
}

// MaildirMayCreate reports whether deliverd may create rcpt's Maildir:
// with maildir_create = true, or when the config names rcpt itself (a
// deliver_to, an alias's target, an unrouted_to, or the postmaster who
// gets the DSNs), which is the operator asking for that mailbox. Other addresses, such as the random local parts
// of spam to a multi-drop domain, get a Maildir only if one exists.
func (c *Config) MaildirMayCreate(rcpt string) bool {
	return c.MaildirMayCreateAt(&c.Deliver, rcpt)
}

// MaildirMayCreateAt is MaildirMayCreate for the maildir:// target d (a
// [target.NAME] table's resolved form, or [deliver]), with its own
// maildir_create.
func (c *Config) MaildirMayCreateAt(d *Deliver, rcpt string) bool {
	if d.MaildirCreate || strings.EqualFold(rcpt, c.Deliver.Postmaster) {
		return true
	}
	for _, a := range c.Account {
		named := append([]string{a.UnroutedTo}, a.DeliverTo...)
		for _, to := range a.Aliases {
			named = append(named, to)
		}
		for _, n := range named {
			if strings.EqualFold(n, rcpt) {
				return true
			}
		}
	}
	return false
}

// HasMaildir reports whether rcpt can be delivered to under the target
// called target if it is a maildir:// one: its Maildir exists or may be
// created. Any other target takes every address to the server, which
// decides; an unknown name, too (the config refuses one).
func (c *Config) HasMaildir(target, rcpt string) bool {
	d, ok := c.DeliverFor(target)
	if !ok {
		return true
	}
	pattern := d.MaildirPattern()
	if pattern == "" || c.MaildirMayCreateAt(d, rcpt) {
		return true
	}
	fi, err := os.Stat(filepath.Join(MaildirPath(pattern, rcpt), "new"))
	return err == nil && fi.IsDir()
}
