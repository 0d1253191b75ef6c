// Package maildir delivers into Maildirs by the Maildir convention: the
// message is written and fsynced in tmp/, then renamed into new/ (D. J.
// Bernstein, maildir(5)), never replacing a file there. File names are made from the spool id, so a
// delivery repeated after a crash finds its own earlier copy and does not
// add a second one: exactly once, with no window.
package maildir

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"example.org/popspool/shared/spool"
)

// Name is the file name of message id in a Maildir: "<seconds>.Q<id>.popspool".
func Name(id string) string {
	return fmt.Sprintf("%d.Q%s.popspool", spool.IDTime(id).Unix(), id)
}

// ErrNoMaildir is returned for a Maildir that does not exist and may not
// be created.
var ErrNoMaildir = errors.New("no such Maildir")

// Writer delivers into Maildirs through FS. Concurrent deliveries into one
// Maildir share its folders' fsyncs (group commit): a caller returns
// once an fsync that began after its own rename has finished.
type Writer struct {
	FS spool.FS // nil is spool.OS{}

	mu    sync.Mutex
	syncs map[string]*dirSync // new/ folder -> its group commit
	ready map[string]bool     // Maildirs checked (or made) complete
}

// std is the writer of Deliver.
var std Writer

// Deliver is Writer.Deliver on the real file system, with the new/
// folder fsyncs of all its callers grouped.
func Deliver(dir, id string, head string, body io.Reader, retry, create bool) (dup bool, err error) {
	return std.Deliver(dir, id, head, body, retry, create)
}

// Deliver writes head and then body into the Maildir dir as Name(id),
// creating the Maildir first if create allows: written and fsynced in
// tmp/, renamed into new/ without replacing, then new/ and tmp/ fsynced. It returns
// dup = true when the message was already there, in new/ or (if retry,
// because an earlier attempt may have finished) in cur/, where a mail
// reader may have moved it and added flags; the copy in tmp/ is removed
// then.
func (w *Writer) Deliver(dir, id string, head string, body io.Reader, retry, create bool) (dup bool, err error) {
	if err := w.ensure(dir, create); err != nil {
		return false, err
	}
	name := Name(id)
	tmp := filepath.Join(dir, "tmp", name)
	fs := w.fs()
	if retry && seen(dir, name) {
		fs.Remove(tmp)
		return true, nil
	}
	if err := w.write(tmp, head, body); err != nil {
		return false, err
	}
	err = fs.RenameNoReplace(tmp, filepath.Join(dir, "new", name))
	if errors.Is(err, os.ErrExist) {
		fs.Remove(tmp)
		return true, nil
	}
	if err != nil {
		fs.Remove(tmp)
		return false, fmt.Errorf("maildir %s: %w", dir, err)
	}
	// new/'s fsync makes the new name durable, tmp/'s the file's creation
	// (the power-cut model counts a name made in tmp/ durable only then).
	for _, sub := range []string{"new", "tmp"} {
		if err := w.syncOf(filepath.Join(dir, sub)).sync(fs); err != nil {
			return false, err
		}
	}
	return false, nil
}

func (w *Writer) fs() spool.FS {
	if w.FS == nil {
		return spool.OS{}
	}
	return w.FS
}

// write makes path (removing a partial copy an interrupted attempt left)
// with head and body, fsynced.
func (w *Writer) write(path, head string, body io.Reader) error {
	fs := w.fs()
	f, err := fs.Create(path)
	if errors.Is(err, os.ErrExist) { // a leftover of an interrupted attempt
		fs.Remove(path)
		f, err = fs.Create(path)
	}
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	out := bufio.NewWriterSize(fileWriter{fs, f}, 64<<10)
	_, err = out.WriteString(head)
	if err == nil {
		_, err = io.Copy(out, body)
	}
	if err == nil {
		err = out.Flush()
	}
	if err == nil {
		err = fs.SyncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fs.Remove(path)
		return fmt.Errorf("maildir write %s: %w", path, err)
	}
	return nil
}

// fileWriter writes to f through fs.
type fileWriter struct {
	fs spool.FS
	f  *os.File
}

func (w fileWriter) Write(b []byte) (int, error) { return w.fs.Write(w.f, b) }

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

// ensure checks (and with create, makes) dir's tmp/, new/ and cur/, once
// per Maildir: a Maildir removed later makes the next write fail, which
// forgets it.
func (w *Writer) ensure(dir string, create bool) error {
	w.mu.Lock()
	ok := w.ready[dir]
	w.mu.Unlock()
	if ok {
		if fi, err := os.Stat(filepath.Join(dir, "tmp")); err == nil && fi.IsDir() {
			return nil
		}
		w.mu.Lock()
		delete(w.ready, dir)
		w.mu.Unlock()
	}
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
	w.mu.Lock()
	if w.ready == nil {
		w.ready = map[string]bool{}
	}
	w.ready[dir] = true
	w.mu.Unlock()
	return nil
}

func (w *Writer) syncOf(dir string) *dirSync {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.syncs == nil {
		w.syncs = map[string]*dirSync{}
	}
	d := w.syncs[dir]
	if d == nil {
		d = &dirSync{dir: dir}
		d.cond = sync.NewCond(&d.mu)
		w.syncs[dir] = d
	}
	return d
}

// dirSync is the group commit of one folder's fsyncs: fsyncs run one at a
// time, and a caller waits for the first one that begins after it
// arrived, which covers every entry change made before that.
type dirSync struct {
	dir     string
	mu      sync.Mutex
	cond    *sync.Cond
	running bool
	begun   uint64 // fsyncs begun
	ended   uint64 // fsyncs ended (they end in order)
	failed  uint64 // the last fsync that failed, and its error
	err     error
}

func (d *dirSync) sync(fs spool.FS) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	need := d.begun + 1 // one running now may have begun before our change
	for d.ended < need {
		if d.running {
			d.cond.Wait()
			continue
		}
		d.running = true
		d.begun++
		n := d.begun
		d.mu.Unlock()
		err := fs.SyncDir(d.dir)
		d.mu.Lock()
		d.running, d.ended = false, n
		if err != nil && !errors.Is(err, os.ErrPermission) {
			d.failed, d.err = n, fmt.Errorf("fsync %s: %w", d.dir, err)
		}
		d.cond.Broadcast()
	}
	if d.failed >= need {
		return d.err
	}
	return nil
}
