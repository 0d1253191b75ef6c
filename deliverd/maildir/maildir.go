// Package maildir delivers into Maildirs by the Maildir convention: the
// message is written and fsynced in tmp/, then renamed into new/ (D. J.
// Bernstein, maildir(5)), never replacing a file there. File names are made from the spool id, so a
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

// std is the writer of Deliver and DeliverAll.
var std Writer

// Deliver is Writer.Deliver on the real file system, with the folder
// fsyncs of all its callers grouped.
func Deliver(dir, id string, head string, body io.Reader, retry, create bool) (dup bool, err error) {
	return std.Deliver(dir, id, head, body, retry, create)
}

// DeliverAll is Writer.DeliverAll on the real file system.
func DeliverAll(mails []Mail) []Result { return std.DeliverAll(mails) }

// Deliver writes head and then body into the Maildir dir as Name(id),
// creating the Maildir first if create allows: a group of one for
// DeliverAll. It returns dup = true when the message was already there,
// in new/ or (if retry, because an earlier attempt may have finished) in
// cur/, where a mail reader may have moved it and added flags; the copy
// in tmp/ is removed then.
func (w *Writer) Deliver(dir, id string, head string, body io.Reader, retry, create bool) (dup bool, err error) {
	open := func() (io.ReadCloser, error) { return io.NopCloser(body), nil }
	r := w.DeliverAll([]Mail{{Dir: dir, ID: id, Head: head, Open: open, Retry: retry, Create: create}})[0]
	return r.Dup, r.Err
}

// Mail is one copy for DeliverAll: Head and then what Open returns, into
// the Maildir Dir as Name(ID). Retry and Create are as Deliver's.
type Mail struct {
	Dir, ID, Head string
	Open          func() (io.ReadCloser, error)
	Retry, Create bool
}

// Result is what became of one Mail: with a nil Err it is durably in
// new/, written now or (Dup) found there or in cur/ from before.
type Result struct {
	Dup bool
	Err error
}

// DeliverAll delivers a group of mails with their durability work shared
// (docs/design-notes.md, "Batch durability"): every file is written
// unsynced in its Maildir's tmp/, their data is made durable together
// (spool.FS SyncGroup: one syncfs(2) per filesystem on Linux, an fsync
// of each file in a group of fewer than four or elsewhere), each is
// renamed into new/ without replacing, and then each new/ and tmp/ the
// group touched is fsynced once. A second mail of the group with the same
// Maildir and id (two addresses that lead to one Maildir) is a Dup of the
// first.
func (w *Writer) DeliverAll(mails []Mail) []Result {
	b := &batch{w: w, fs: w.fs(), res: make([]Result, len(mails)),
		anchors: map[string]*anchor{}, byDev: map[uint64]*anchor{}, names: map[string]bool{}}
	defer b.close()
	for i, m := range mails {
		b.write(i, m)
	}
	b.syncData()
	b.rename()
	b.syncFolders()
	return b.res
}

// batch is one DeliverAll under way.
type batch struct {
	w       *Writer
	fs      spool.FS
	res     []Result
	anchors map[string]*anchor // Maildir -> the anchor of its filesystem
	byDev   map[uint64]*anchor // filesystem -> its anchor
	names   map[string]bool    // Maildir files of this group
	files   []file             // written, in order
}

// anchor is an open tmp/ folder on one filesystem, opened before any file
// of the group was written there (spool.FS SyncGroup), and the files
// written there since.
type anchor struct {
	f     *os.File
	files []int // indexes into batch.files
}

// file is one mail written into tmp/, to rename into new/.
type file struct {
	mail     int // index into the results
	dir, tmp string
	name     string
	done     bool // nothing to rename: failed, or found delivered
}

func (b *batch) write(i int, m Mail) {
	name := Name(m.ID)
	key := filepath.Join(m.Dir, name)
	if b.names[key] {
		b.res[i].Dup = true
		return
	}
	b.names[key] = true
	a, err := b.anchorOf(m.Dir, m.Create)
	if err != nil {
		b.res[i].Err = err
		return
	}
	tmp := filepath.Join(m.Dir, "tmp", name)
	if m.Retry && seen(m.Dir, name) {
		b.fs.Remove(tmp)
		b.res[i].Dup = true
		b.files = append(b.files, file{mail: i, dir: m.Dir, done: true}) // its folders are fsynced
		return
	}
	body, err := m.Open()
	if err != nil {
		b.res[i].Err = err
		return
	}
	err = b.w.write(tmp, m.Head, body)
	body.Close()
	if err != nil {
		b.res[i].Err = err
		return
	}
	a.files = append(a.files, len(b.files))
	b.files = append(b.files, file{mail: i, dir: m.Dir, tmp: tmp, name: name})
}

// anchorOf checks (or makes) the Maildir dir and returns the anchor of
// its filesystem, opening dir's tmp/ as the anchor if it is the group's
// first Maildir there.
func (b *batch) anchorOf(dir string, create bool) (*anchor, error) {
	if a := b.anchors[dir]; a != nil {
		return a, nil
	}
	f, err := b.w.openTmp(dir, create)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("maildir: %w", err)
	}
	a := b.byDev[devOf(fi)]
	if a == nil {
		a = &anchor{f: f}
		b.byDev[devOf(fi)] = a
	} else {
		f.Close()
	}
	b.anchors[dir] = a
	return a, nil
}

// openTmp opens dir's tmp/, checking (or making) the Maildir first; a
// Maildir checked before and removed since is checked again.
func (w *Writer) openTmp(dir string, create bool) (*os.File, error) {
	for range 2 {
		if err := w.ensure(dir, create); err != nil {
			return nil, err
		}
		f, err := os.Open(filepath.Join(dir, "tmp"))
		if err == nil {
			return f, nil
		}
		if !w.forget(dir) || !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("maildir: %w", err)
		}
	}
	return nil, fmt.Errorf("maildir %s: removed while being checked", dir)
}

// syncData makes the written files' data durable, one group per
// filesystem; a failed group's files are removed and fail.
func (b *batch) syncData() {
	for _, a := range b.byDev {
		var paths []string
		for _, k := range a.files {
			paths = append(paths, b.files[k].tmp)
		}
		if len(paths) == 0 {
			continue
		}
		if err := b.fs.SyncGroup(a.f, paths); err != nil {
			for _, k := range a.files {
				b.fail(k, fmt.Errorf("maildir: %w", err))
			}
		}
	}
}

// rename moves each durable file into new/, never replacing one there
// (then it was delivered before: Dup).
func (b *batch) rename() {
	for k, f := range b.files {
		if f.done {
			continue
		}
		err := b.fs.RenameNoReplace(f.tmp, filepath.Join(f.dir, "new", f.name))
		if errors.Is(err, os.ErrExist) {
			b.fs.Remove(f.tmp)
			b.res[f.mail].Dup = true
			continue
		}
		if err != nil {
			b.fail(k, fmt.Errorf("maildir %s: %w", f.dir, err))
		}
	}
}

// syncFolders fsyncs new/ and tmp/ of each Maildir the group delivered
// into, once: new/'s makes the new names durable, tmp/'s the files'
// creation (the power-cut model counts a name made in tmp/ durable only
// then). A found copy's Maildir is fsynced too: the attempt that left it
// may have died before its own fsyncs.
func (b *batch) syncFolders() {
	done := map[string]error{}
	for _, f := range b.files {
		if b.res[f.mail].Err != nil {
			continue
		}
		err, ok := done[f.dir]
		if !ok {
			for _, sub := range []string{"new", "tmp"} {
				if err == nil {
					err = b.w.syncOf(filepath.Join(f.dir, sub)).sync(b.fs)
				}
			}
			done[f.dir] = err
		}
		if err != nil {
			b.res[f.mail] = Result{Err: err}
		}
	}
}

// fail removes file k's copy in tmp/ and gives its mail err.
func (b *batch) fail(k int, err error) {
	f := &b.files[k]
	f.done = true
	b.fs.Remove(f.tmp)
	b.res[f.mail].Err = err
}

func (b *batch) close() {
	for _, a := range b.byDev {
		a.f.Close()
	}
}

func (w *Writer) fs() spool.FS {
	if w.FS == nil {
		return spool.OS{}
	}
	return w.FS
}

// write makes path (removing a partial copy an interrupted attempt left)
// with head and body, unsynced: the group syncs it.
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
	if head != "" {
		_, err = fs.Write(f, []byte(head))
	}
	if err == nil {
		_, err = fs.Copy(f, body) // in the kernel from a spool.Section
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
// per Maildir: a Maildir removed later makes the next open of its tmp/
// fail (DeliverAll's anchor), which forgets it.
func (w *Writer) ensure(dir string, create bool) error {
	w.mu.Lock()
	ok := w.ready[dir]
	w.mu.Unlock()
	if ok {
		return nil
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

// forget makes the next delivery into dir check it again; it reports
// whether dir had been checked.
func (w *Writer) forget(dir string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	was := w.ready[dir]
	delete(w.ready, dir)
	return was
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
