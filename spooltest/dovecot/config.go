package dovecot

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// layout makes the instance's folder: traversable by Dovecot's
// unprivileged processes (dovenull, dovecot, the mail user), with the
// certificate, the passwd-file and a Maildir per user.
func (d *Dovecot) layout() error {
	if err := os.Chmod(d.Dir, 0o755); err != nil { // MkdirTemp made it 0700
		return err
	}
	for _, sub := range []string{"run", "state", "home"} {
		if err := os.MkdirAll(filepath.Join(d.Dir, sub), 0o755); err != nil {
			return err
		}
	}
	ca, err := writeCert(d.Dir)
	if err != nil {
		return err
	}
	d.CAFile = ca
	if err := d.writePasswd(); err != nil {
		return err
	}
	if d.opt.OAuth2URL != "" {
		ext := "introspection_mode = post\nintrospection_url = " + d.opt.OAuth2URL +
			"\nusername_attribute = username\nactive_attribute = active\nactive_value = true\nforce_introspection = yes\n"
		if err := os.WriteFile(filepath.Join(d.Dir, "oauth2.conf.ext"), []byte(ext), 0o644); err != nil {
			return err
		}
	}
	for name := range d.users {
		if err := d.makeMaildir(name); err != nil {
			return err
		}
	}
	return nil
}

// passwd is the passwd-file: "user:{PLAIN}password" lines.
func (d *Dovecot) passwd() string {
	names := make([]string, 0, len(d.users))
	for n := range d.users {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s:{PLAIN}%s\n", n, d.users[n])
	}
	return b.String()
}

// writePasswd (re)writes the passwd-file, 0640 and group dovecot: the
// auth process reads it as the dovecot user, and rereads it when it
// changes. It is replaced by rename, so a login never sees half of it.
func (d *Dovecot) writePasswd() error {
	g, err := user.LookupGroup("dovecot")
	if err != nil {
		return fmt.Errorf("group dovecot (made by dovecot-core): %w", err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return fmt.Errorf("group dovecot: %w", err)
	}
	path := filepath.Join(d.Dir, "passwd")
	if err := os.WriteFile(path+".new", []byte(d.passwd()), 0o640); err != nil {
		return err
	}
	if err := os.Chown(path+".new", 0, gid); err != nil {
		return err
	}
	return os.Rename(path+".new", path)
}

// config is a standalone dovecot.conf: nothing under /etc/dovecot is read.
// lmtp is the LMTP port, 0 for none.
func (d *Dovecot) config(plain, secure, lmtp int) string {
	mech := d.opt.Mechanisms
	if mech == "" {
		mech = "plain login apop"
	}
	passwordMech := mech
	if d.opt.OAuth2URL != "" {
		mech += " xoauth2 oauthbearer"
	}
	dir := d.Dir
	lines := []string{
		"instance_name = popspool-" + filepath.Base(dir),
		"base_dir = " + dir + "/run",
		"state_dir = " + dir + "/state",
		"log_path = " + dir + "/dovecot.log",
		"info_log_path = " + dir + "/dovecot.log",
		"protocols = pop3",
		"listen = 127.0.0.1",
		"default_internal_user = dovecot",
		"default_login_user = dovenull",
		fmt.Sprintf("first_valid_uid = %d", d.UID),
		fmt.Sprintf("last_valid_uid = %d", d.UID),
		"disable_plaintext_auth = no", // USER/PASS on the plain port (tests of tls = none)
		"auth_mechanisms = " + mech,
		"auth_failure_delay = 0", // the default 2s only slows wrong-password tests
		"ssl = yes",              // STLS on the plain port, TLS on pop3s
		"ssl_cert = <" + dir + "/cert.pem",
		"ssl_key = <" + dir + "/key.pem",
		"mail_location = maildir:~/Maildir",
		"pop3_uidl_format = %08Xu%08Xv",
		"passdb {\n  driver = passwd-file\n  mechanisms = " + passwordMech + " none\n  args = scheme=PLAIN " + dir + "/passwd\n}",
		fmt.Sprintf("userdb {\n  driver = static\n  args = uid=%d gid=%d home=%s/home/%%u\n}", d.UID, d.GID, dir),
		fmt.Sprintf("service pop3-login {\n  inet_listener pop3 {\n    address = 127.0.0.1\n    port = %d\n  }\n"+
			"  inet_listener pop3s {\n    address = 127.0.0.1\n    port = %d\n    ssl = yes\n  }\n}", plain, secure),
		"service anvil {\n  chroot =\n}",
	}
	if lmtp != 0 {
		lines = append(lines, lmtpConfig(lmtp)...)
	}
	if d.opt.OAuth2URL != "" {
		lines = append(lines, "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = "+dir+"/oauth2.conf.ext\n}")
	}
	lines = append(lines, d.opt.Extra...)
	return strings.Join(lines, "\n") + "\n"
}

// lmtpConfig adds LMTP to the protocols, on 127.0.0.1:port. The lmtp
// service runs as root (the default) and switches to the userdb's uid for
// each delivery, like Debian's stock one.
func lmtpConfig(port int) []string {
	return []string{
		"protocols = pop3 lmtp",
		fmt.Sprintf("service lmtp {\n  inet_listener lmtp {\n    address = 127.0.0.1\n    port = %d\n  }\n}", port),
		// The passwd-file and the homes know bare names: RCPT
		// TO:<Alice@example.org> is user alice. The static userdb cannot
		// tell whether a user exists, so Dovecot asks the passdb
		// (its "none" mechanism allows that lookup) and refuses an
		// unknown recipient.
		"protocol lmtp {\n  auth_username_format = %Ln\n}",
	}
}

// mailUser returns the uid and gid of MailUser, creating the system user
// if it is missing. Another test process may create it at the same time:
// a failed useradd is followed by one more look-up.
func mailUser() (int, int, error) {
	u, err := user.Lookup(MailUser)
	if err != nil {
		out, uerr := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", MailUser).CombinedOutput()
		u, err = user.Lookup(MailUser)
		if err != nil {
			return 0, 0, fmt.Errorf("create mail user %s: %v: %s", MailUser, uerr, strings.TrimSpace(string(out)))
		}
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("mail user %s: %w", MailUser, err)
	}
	return uid, gid, nil
}
