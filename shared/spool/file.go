package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"example.org/popspool/shared/crash"
	"example.org/popspool/shared/event"
)

// Settle is how long a file that was copied (not renamed) into a watched
// folder must stay unchanged before it is taken. Files written by the
// daemons carry an mtime older than Settle, so they are taken at once.
const Settle = 2 * time.Second

// DirSyncError is a failed folder fsync. The daemon must exit: the state of
// the folder on disk is unknown and only recovery at start can mend it.
type DirSyncError struct {
	Dir string
	Err error
}

func (e *DirSyncError) Error() string { return "fsync folder " + e.Dir + ": " + e.Err.Error() }
func (e *DirSyncError) Unwrap() error { return e.Err }

// Part is a file being written in the daemon's tmp/ folder. Its writes
// go through the spool's FS, so a test can fail them.
type Part struct {
	f      *os.File
	ID     string
	fs     FS
	daemon string
	group  *Group // nil: sealed on its own (Seal)
	n      int64  // bytes written
	was    int64  // a spare written over: its size before, cut back to n on Close
}

// Write writes b to the part.
func (p *Part) Write(b []byte) (int, error) {
	n, err := p.fs.Write(p.f, b)
	p.n += int64(n)
	return n, err
}

// Name is the part's path.
func (p *Part) Name() string { return p.f.Name() }

// Create opens tmp/<daemon>/<id>.part for writing; it must not exist.
func (s *Spool) Create(id string) (*Part, error) {
	return s.createExcl(filepath.Join(s.TmpDir(), id+".part"), id)
}

func (s *Spool) createExcl(path, id string) (*Part, error) {
	f, err := s.fs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &Part{f: f, ID: id, fs: s.fs, daemon: s.Daemon}, nil
}

// Seal makes the part durable: its mtime is set back by more than Settle
// (so the next daemon takes it without waiting), then fsync and close. A
// failed fsync is not retried on the same file: the caller removes the part
// and redoes the work from its durable source.
func (p *Part) Seal() error {
	name := p.Name()
	if err := setBack(p.f, time.Now().Add(-2*Settle)); err != nil {
		p.f.Close()
		return fmt.Errorf("seal %s: %w", name, err)
	}
	if err := p.fs.SyncFile(p.f); err != nil {
		p.f.Close()
		return fmt.Errorf("fsync %s: %w", name, err)
	}
	crash.Point(p.daemon + ".spool.sealed")
	if err := p.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	return nil
}

// Abort closes and removes an unfinished part.
func (p *Part) Abort() {
	p.f.Close()
	p.fs.Remove(p.Name())
}

// Move renames src into folder as <id>.eml and fsyncs both folders. It
// returns the new path. It never overwrites: if the name is taken (an
// operator copied a file back while the original still exists) the file
// is stored as <id>-N.eml and an event says so.
func (s *Spool) Move(src, folder, id string) (string, error) {
	b := s.NewBatch()
	dst, err := b.Move(src, folder, id)
	if err != nil {
		return "", err
	}
	return dst, b.Commit()
}

// Batch groups the folder fsyncs of several moves (group commit): the
// renames are done at once, the folders fsynced once each in Commit.
type Batch struct {
	s    *Spool
	dirs []string
}

// NewBatch starts a group of moves.
func (s *Spool) NewBatch() *Batch { return &Batch{s: s} }

// Move renames src into folder; it is durable only after Commit.
func (b *Batch) Move(src, folder, id string) (string, error) {
	dir := b.s.Dir(folder)
	dst, err := b.s.renameUnique(src, dir, id)
	if err != nil {
		return "", err
	}
	crash.Point(b.s.Daemon + ".spool.moved")
	b.add(dir)
	b.add(filepath.Dir(src))
	return dst, nil
}

func (b *Batch) add(dir string) {
	for _, d := range b.dirs {
		if d == dir {
			return
		}
	}
	b.dirs = append(b.dirs, dir)
}

// Commit fsyncs every folder the batch touched, destinations first.
func (b *Batch) Commit() error {
	for _, d := range b.dirs {
		if err := b.s.fs.SyncDir(d); err != nil {
			return err
		}
	}
	b.dirs = b.dirs[:0]
	crash.Point(b.s.Daemon + ".spool.committed")
	return nil
}

func (s *Spool) renameUnique(src, dir, id string) (string, error) {
	dst := filepath.Join(dir, id+".eml")
	for n := 1; ; n++ {
		err := s.fs.RenameNoReplace(src, dst)
		if err == nil {
			if n > 1 {
				event.Emit(&s.log, event.NameCollision).Str("id", id).Str("path", dst).Msg("a file of that name already existed")
			}
			return dst, nil
		}
		if !errors.Is(err, os.ErrExist) || n > 100 {
			return "", fmt.Errorf("move to %s: %w", dir, err)
		}
		dst = filepath.Join(dir, id+"-"+strconv.Itoa(n)+".eml")
	}
}

// Claim takes in/name into the daemon's tmp/ folder, so no other daemon or
// instance can process it. It returns the claimed path and the message id;
// a file whose name is not an id (an operator's) gets a fresh one. If the
// file is gone (someone else took it, or an operator removed it) it returns
// an error for which IsGone is true.
func (s *Spool) Claim(folder, name string) (path, id string, err error) {
	b := s.NewBatch()
	path, id, err = b.Claim(folder, name)
	if err != nil {
		return "", "", err
	}
	return path, id, b.Commit()
}

// Claim takes in/name into tmp/ like Spool.Claim; the two folders are
// fsynced by Commit, which must come before the claimed file moves on.
func (b *Batch) Claim(folder, name string) (path, id string, err error) {
	s := b.s
	id, ok := IDOf(name)
	if !ok {
		id = NewID()
		event.Emit(&s.log, event.Renamed).Str("file", name).Str("id", id).Str("dir", folder).Msg("file name is not a spool id; gave it one")
	}
	src := filepath.Join(s.Dir(folder), name)
	dst := filepath.Join(s.TmpDir(), id+".eml")
	err = s.fs.RenameNoReplace(src, dst)
	if errors.Is(err, os.ErrExist) && ok {
		// A copy with the same id ("<id>-1.eml", made when a name was
		// taken) is in hand. Giving this one a fresh id would hide from
		// deliverd's ledger that the two are one message: leave it for
		// the next scan, when the ledger will know.
		return "", "", fmt.Errorf("claim %s: %w", src, ErrBusy)
	}
	if errors.Is(err, os.ErrExist) {
		id = NewID()
		dst = filepath.Join(s.TmpDir(), id+".eml")
		err = s.fs.RenameNoReplace(src, dst)
	}
	if err != nil {
		return "", "", fmt.Errorf("claim %s: %w", src, err)
	}
	crash.Point(s.Daemon + ".spool.claimed")
	b.add(s.TmpDir())
	b.add(s.Dir(folder))
	return dst, id, nil
}

// ErrBusy means a file with the same id is being worked on; the file was
// left where it was for a later scan.
var ErrBusy = errors.New("a copy with the same id is in hand")

// IsGone reports whether err means the file was not there any more, or
// was left for later (ErrBusy): either way the caller skips it quietly.
func IsGone(err error) bool { return errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrBusy) }

// Replace writes a new version of the claimed file tmp/<daemon>/<id>.eml:
// fill writes the content into <id>.new, which is sealed and renamed over
// the old one. A crash leaves either version whole.
func (s *Spool) Replace(id string, fill func(w io.Writer) error) error {
	path := filepath.Join(s.TmpDir(), id+".new")
	p, err := s.createExcl(path, id)
	if errors.Is(err, os.ErrExist) {
		s.fs.Remove(path) // a leftover of a crash; its content is worthless
		p, err = s.createExcl(path, id)
	}
	if err != nil {
		return err
	}
	if err := fill(p); err != nil {
		p.Abort()
		return err
	}
	if err := p.Seal(); err != nil {
		s.fs.Remove(path)
		return err
	}
	if err := s.fs.Rename(path, filepath.Join(s.TmpDir(), id+".eml")); err != nil {
		return fmt.Errorf("replace %s: %w", id, err)
	}
	crash.Point(s.Daemon + ".spool.replaced")
	return s.fs.SyncDir(s.TmpDir())
}

// Remove deletes a file and fsyncs its folder.
func (s *Spool) Remove(path string) error {
	if err := s.Unlink(path); err != nil {
		return err
	}
	return s.fs.SyncDir(filepath.Dir(path))
}

// Unlink deletes a file without fsyncing its folder; the caller fsyncs
// the folder later for a whole group (SyncTmp). For files whose removal a
// power cut may undo without harm: deliverd's delivered files, which its
// ledger recognises if they come back.
func (s *Spool) Unlink(path string) error {
	if err := s.fs.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove: %w", err)
	}
	crash.Point(s.Daemon + ".spool.removed")
	return nil
}

// Leftovers lists the daemon's tmp/ folder for recovery at start: the
// claimed or written files (*.eml, *.part) and leftovers (*.new), sorted.
func (s *Spool) Leftovers() (eml, part, other []string, err error) {
	entries, err := os.ReadDir(s.TmpDir())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read %s: %w", s.TmpDir(), err)
	}
	for _, e := range entries {
		n := e.Name()
		switch {
		case strings.HasPrefix(n, ".") || e.IsDir():
		case strings.HasSuffix(n, ".eml"):
			eml = append(eml, filepath.Join(s.TmpDir(), n))
		case strings.HasSuffix(n, ".part"):
			part = append(part, filepath.Join(s.TmpDir(), n))
		default:
			other = append(other, filepath.Join(s.TmpDir(), n))
		}
	}
	return eml, part, other, nil
}

// IsDirSync reports whether err is a failed folder fsync, after which the
// daemon must exit so recovery runs (DESIGN.md: never retry a failed
// fsync).
func IsDirSync(err error) bool {
	var dse *DirSyncError
	return errors.As(err, &dse)
}

// Trouble handles a local spool error about file name: a failed folder
// fsync is logged and returned, for the daemon to exit; any other error
// (a full disk, permissions) is logged with its event, the caller pauses
// for pause and goes on, and nil is returned.
func (s *Spool) Trouble(err error, name string, pause time.Duration) error {
	if IsDirSync(err) {
		event.Emit(&s.log, event.DirSyncFailed).Err(err).Msg("exiting so recovery runs at start")
		return err
	}
	ev := event.SpoolIO
	if IsNoSpace(err) {
		ev = event.DiskFull
	}
	event.Emit(&s.log, ev).Err(err).Str("file", name).Msg("will retry")
	time.Sleep(pause)
	return nil
}
