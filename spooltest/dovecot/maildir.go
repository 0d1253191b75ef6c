package dovecot

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Maildir returns the Maildir folder of user.
func (d *Dovecot) Maildir(user string) string {
	return filepath.Join(d.Dir, "home", user, "Maildir")
}

// makeMaildir creates home/<user>/Maildir/{tmp,new,cur}, 0700 and owned by
// the mail user, as Dovecot's mail processes run as that user.
func (d *Dovecot) makeMaildir(user string) error {
	if user == "" || strings.ContainsAny(user, "/:\n") || user == "." || user == ".." {
		return fmt.Errorf("user name %q cannot be a home folder", user)
	}
	home := filepath.Join(d.Dir, "home", user)
	dirs := []string{home, d.Maildir(user)}
	for _, sub := range []string{"tmp", "new", "cur"} {
		dirs = append(dirs, filepath.Join(d.Maildir(user), sub))
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := os.Chown(dir, d.UID, d.GID); err != nil {
			return err
		}
	}
	return nil
}

var seq atomic.Int64

// Put delivers msg into user's Maildir the Maildir way: written under tmp/,
// owned by the mail user with mode 0600, then renamed into new/. It returns
// the file's name.
func (d *Dovecot) Put(tb testing.TB, user string, msg []byte) string {
	tb.Helper()
	name, err := d.put(user, msg)
	if err != nil {
		tb.Fatalf("dovecot: put a message for %s: %v", user, err)
	}
	return name
}

func (d *Dovecot) put(user string, msg []byte) (string, error) {
	if _, ok := d.users[user]; !ok {
		return "", fmt.Errorf("no such user %q", user)
	}
	name := fmt.Sprintf("%d.P%dQ%d.popspool", time.Now().Unix(), os.Getpid(), seq.Add(1))
	tmp := filepath.Join(d.Maildir(user), "tmp", name)
	if err := os.WriteFile(tmp, msg, 0o600); err != nil {
		return "", err
	}
	if err := os.Chown(tmp, d.UID, d.GID); err != nil {
		_ = os.Remove(tmp) // the error above is what matters
		return "", err
	}
	if err := os.Rename(tmp, filepath.Join(d.Maildir(user), "new", name)); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	return name, nil
}

// Count returns how many messages user's Maildir holds (new/ and cur/).
func (d *Dovecot) Count(tb testing.TB, user string) int {
	tb.Helper()
	n := 0
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(d.Maildir(user), sub))
		if err != nil {
			tb.Fatalf("dovecot: count %s's messages: %v", user, err)
		}
		n += len(ents)
	}
	return n
}

// SetPassword changes user's password. Dovecot rereads the passwd-file
// when it changes, so the next login sees the new one.
func (d *Dovecot) SetPassword(tb testing.TB, user, pass string) {
	tb.Helper()
	d.users[user] = pass
	if err := d.writePasswd(); err != nil {
		tb.Fatalf("dovecot: set %s's password: %v", user, err)
	}
}

// Messages returns the files in user's Maildir (new/ and cur/), by name.
func (d *Dovecot) Messages(tb testing.TB, user string) [][]byte {
	tb.Helper()
	var names []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(d.Maildir(user), sub))
		if err != nil {
			tb.Fatalf("dovecot: list %s's messages: %v", user, err)
		}
		for _, e := range ents {
			names = append(names, filepath.Join(sub, e.Name()))
		}
	}
	sort.Strings(names)
	var msgs [][]byte
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(d.Maildir(user), n))
		if err != nil {
			tb.Fatalf("dovecot: read %s's message %s: %v", user, n, err)
		}
		msgs = append(msgs, b)
	}
	return msgs
}

// Body returns a message delivered by LMTP as the client sent it: without
// the trace lines Dovecot's LMTP prepends (Return-Path, Delivered-To,
// then one Received with its folded lines) and with CRLF line ends again
// (Dovecot saves Maildir files with LF: mail_save_crlf = no).
func Body(data []byte) []byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	i := 0
	skip := func() { // a header line and its folded continuation lines
		for i++; i < len(lines) && len(lines[i]) > 0 && (lines[i][0] == ' ' || lines[i][0] == '\t'); i++ {
		}
	}
	for i < len(lines) && (hasPrefixFold(lines[i], "Return-Path:") || hasPrefixFold(lines[i], "Delivered-To:")) {
		skip()
	}
	if i < len(lines) && hasPrefixFold(lines[i], "Received:") {
		skip()
	}
	rest := bytes.Join(lines[i:], nil)
	return bytes.ReplaceAll(rest, []byte("\n"), []byte("\r\n"))
}

func hasPrefixFold(line []byte, prefix string) bool {
	return len(line) >= len(prefix) && strings.EqualFold(string(line[:len(prefix)]), prefix)
}
