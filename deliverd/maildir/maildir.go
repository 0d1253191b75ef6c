// Package maildir delivers into Maildirs by the Maildir convention: the
// message is written and fsynced in tmp/, then linked into new/ (D. J.
// Bernstein, maildir(5)). File names are made from the spool id, so a
// delivery repeated after a crash finds its own earlier copy and does not
// add a second one: exactly once, with no window.
package maildir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"example.org/popspool/shared/spool"
)

// Dir returns the Maildir for rcpt from a pattern such as
// /var/mail/{user} or /srv/mail/{domain}/{user}. The parts taken from the
// address are made safe as single path elements.
func Dir(pattern, rcpt string) string {
	local, domain := rcpt, ""
	if at := strings.LastIndexByte(rcpt, '@'); at >= 0 {
		local, domain = rcpt[:at], rcpt[at+1:]
	}
	r := strings.NewReplacer("{user}", safe(local), "{domain}", safe(domain))
	return filepath.Clean(r.Replace(pattern))
}

// safe lower-cases s and keeps letters, digits and ".-_+", replacing
// anything else; a result that could climb out of its folder is escaped.
func safe(s string) string {
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

// Name is the file name of message id in a Maildir: "<seconds>.Q<id>.popspool".
func Name(id string) string {
	return fmt.Sprintf("%d.Q%s.popspool", spool.IDTime(id).Unix(), id)
}

// Deliver writes head and then body into the Maildir dir as Name(id). It
// returns dup = true when the message was already there, in new/ or (if
// retry, because an earlier attempt may have finished) in cur/, where a
// mail reader may have moved it and added flags.
func Deliver(dir, id string, head string, body io.Reader, retry bool) (dup bool, err error) {
	if err := ensure(dir); err != nil {
		return false, err
	}
	name := Name(id)
	if retry && seen(dir, name) {
		return true, nil
	}
	tmp := filepath.Join(dir, "tmp", name)
	if err := write(tmp, head, body); err != nil {
		return false, err
	}
	defer os.Remove(tmp)
	err = os.Link(tmp, filepath.Join(dir, "new", name))
	if errors.Is(err, os.ErrExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("maildir %s: %w", dir, err)
	}
	return false, syncDir(filepath.Join(dir, "new"))
}

func write(path, head string, body io.Reader) error {
	os.Remove(path) // a leftover of an interrupted attempt
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	_, err = io.WriteString(f, head)
	if err == nil {
		_, err = io.Copy(f, body)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("maildir write %s: %w", path, err)
	}
	return nil
}

func seen(dir, name string) bool {
	if _, err := os.Stat(filepath.Join(dir, "new", name)); err == nil {
		return true
	}
	m, _ := filepath.Glob(filepath.Join(dir, "cur", name) + "*")
	return len(m) > 0
}

func ensure(dir string) error {
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return fmt.Errorf("maildir: %w", err)
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
