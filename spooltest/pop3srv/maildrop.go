package pop3srv

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// message is one maildrop entry, fixed at login.
type message struct {
	path    string
	uid     string
	size    int64 // octets the client gets after un-stuffing: the file, plus CRLF if it lacks one
	deleted bool
}

// maildrop is the snapshot a session works on: files sorted by name,
// numbered from 1 (RFC 1939 §5). Files added later are not seen.
type maildrop struct {
	msgs []message
}

func snapshot(dir string) (*maildrop, error) {
	ents, err := os.ReadDir(dir) // sorted by file name
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", dir, err)
	}
	d := &maildrop{}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".eml") {
			continue
		}
		m, err := newMessage(dir, e.Name())
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since ReadDir
		}
		if err != nil {
			return nil, err
		}
		d.msgs = append(d.msgs, m)
	}
	return d, nil
}

func newMessage(dir, name string) (message, error) {
	path := filepath.Join(dir, name)
	size, crlf, err := sizeAndEnding(path)
	if err != nil {
		return message{}, fmt.Errorf("snapshot %s: %w", name, err)
	}
	if !crlf {
		size += 2
	}
	return message{path: path, uid: uidFor(strings.TrimSuffix(name, ".eml")), size: size}, nil
}

// sizeAndEnding returns the file size and whether the file ends in CRLF,
// reading only the last two octets.
func sizeAndEnding(path string) (int64, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close() // read-only; a close error changes nothing
	st, err := f.Stat()
	if err != nil {
		return 0, false, err
	}
	if st.Size() < 2 {
		return st.Size(), false, nil
	}
	var tail [2]byte
	if _, err := f.ReadAt(tail[:], st.Size()-2); err != nil && !errors.Is(err, io.EOF) {
		return 0, false, err
	}
	return st.Size(), tail == [2]byte{'\r', '\n'}, nil
}

// uidFor returns the file's base name when it is a valid unique-id (RFC 1939
// §7, UIDL: 1 to 70 octets in 0x21..0x7E); otherwise a stable hash of it.
func uidFor(base string) string {
	ok := len(base) >= 1 && len(base) <= 70
	for i := 0; ok && i < len(base); i++ {
		ok = base[i] >= 0x21 && base[i] <= 0x7E
	}
	if ok {
		return base
	}
	sum := sha256.Sum256([]byte(base))
	return "h-" + hex.EncodeToString(sum[:20])
}

// get resolves a message-number argument; deleted messages are not
// accessible (RFC 1939 §5). The string is the -ERR text on failure.
func (d *maildrop) get(arg string) (*message, int, string) {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 || n > len(d.msgs) {
		return nil, 0, fmt.Sprintf("no such message: %q", arg)
	}
	m := &d.msgs[n-1]
	if m.deleted {
		return nil, 0, fmt.Sprintf("message %d already deleted", n)
	}
	return m, n, ""
}

// stat counts and sizes the messages not marked deleted.
func (d *maildrop) stat() (int, int64) {
	n, size := 0, int64(0)
	for _, m := range d.msgs {
		if !m.deleted {
			n++
			size += m.size
		}
	}
	return n, size
}

func (d *maildrop) reset() {
	for i := range d.msgs {
		d.msgs[i].deleted = false
	}
}

// update removes the files marked deleted (RFC 1939 §6, UPDATE state). It
// asks the fault hook after each removal; a drop stops it there.
func (d *maildrop) update(s *Server) (int, error) {
	removed := 0
	var errs []error
	for i, m := range d.msgs {
		if !m.deleted {
			continue
		}
		err := os.Remove(m.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // someone else removed it; the goal is met
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove message %d: %w", i+1, err))
			continue
		}
		removed++
		s.n.deleted.Add(1)
		if s.fault(Event{Name: EvDeleted, Msg: i + 1}) {
			return removed, errDropped
		}
	}
	return removed, errors.Join(errs...)
}
