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

// Name is the file name of message id in a Maildir: "<seconds>.Q<id>.popspool".
func Name(id string) string {
	return fmt.Sprintf("%d.Q%s.popspool", spool.IDTime(id).Unix(), id)
}

// ErrNoMaildir is returned for a Maildir that does not exist and may not
// be created.
var ErrNoMaildir = errors.New("no such Maildir")

// Deliver writes head and then body into the Maildir dir as Name(id),
// creating the Maildir first if create allows. It returns dup = true when
// the message was already there, in new/ or (if retry, because an earlier
// attempt may have finished) in cur/, where a mail reader may have moved
// it and added flags. A copy a crash left in tmp/ after linking it is
// removed then.
func Deliver(dir, id string, head string, body io.Reader, retry, create bool) (dup bool, err error) {
	if err := ensure(dir, create); err != nil {
		return false, err
	}
	name := Name(id)
	if retry && seen(dir, name) {
		os.Remove(filepath.Join(dir, "tmp", name))
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

// Sweep removes what a crash left of popspool's own deliveries in the
// tmp/ folders of the Maildirs under pattern: with deliverd holding its
// spool lock no delivery is under way, so each such file is either linked
// into new/ already or a partial copy that a retry writes again. Files of
// other delivery agents are not touched. It returns how many it removed.
func Sweep(pattern string) int {
	glob := strings.NewReplacer("{user}", "*", "{domain}", "*").Replace(pattern)
	found, _ := filepath.Glob(filepath.Join(filepath.Clean(glob), "tmp", "*.Q*.popspool"))
	n := 0
	for _, f := range found {
		if ours(filepath.Base(f)) && os.Remove(f) == nil {
			n++
		}
	}
	return n
}

// ours reports whether name is one Name gives.
func ours(name string) bool {
	secs, rest, ok := strings.Cut(name, ".Q")
	id, ok2 := strings.CutSuffix(rest, ".popspool")
	return ok && ok2 && secs != "" && strings.Trim(secs, "0123456789") == "" && spool.ValidID(id)
}

func seen(dir, name string) bool {
	if _, err := os.Stat(filepath.Join(dir, "new", name)); err == nil {
		return true
	}
	m, _ := filepath.Glob(filepath.Join(dir, "cur", name) + "*")
	return len(m) > 0
}

func ensure(dir string, create bool) error {
	if !create {
		if fi, err := os.Stat(filepath.Join(dir, "new")); err != nil || !fi.IsDir() {
			return fmt.Errorf("%w: %s", ErrNoMaildir, dir)
		}
	}
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
