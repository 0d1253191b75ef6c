// Package journal is an append-only log of small records, each checksummed,
// for fetchd's UIDL journals and deliverd's delivery ledger.
//
// A record is one line: the CRC-32C of the rest in hex, a space, and the
// fields separated by spaces. A crash can leave a torn last line; Open
// truncates the log after the last record that checks out, so a record is
// either whole or absent. A bad record with good ones after it is damage,
// not a crash: Open keeps the good records, saves the original log as
// <name>.corrupt and rewrites the log without the bad bytes (Damage).
package journal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxRecord bounds a record; longer lines are corruption.
const maxRecord = 4096

// FS is the calls by which a journal changes the disk; spool.FS has them,
// so a test can record a journal's fsyncs with the spool's (the power-cut
// model).
type FS interface {
	Create(path string) (*os.File, error)
	Write(f *os.File, b []byte) (int, error)
	SyncFile(f *os.File) error
	Rename(oldpath, newpath string) error
	Remove(path string) error
	SyncDir(dir string) error
}

// Journal is an open log, positioned for appending.
type Journal struct {
	f      *os.File
	path   string
	off    int64 // the log's length: where the next write goes
	buf    bytes.Buffer
	fs     FS
	damage Damage
}

// Damage is what Open skipped of a log whose bad records had good ones
// after them (bit rot, a stray write, an editor; not a crash, which only
// tears the tail). The log was rewritten with the good records; the
// original is kept in Saved.
type Damage struct {
	File    string // the log
	Offset  int64  // where the first bad stretch began
	Skipped int    // lines skipped: a damaged record, or two a damaged line end joined
	Regions int    // bad stretches
	Saved   string // the original log, as Open found it
}

// ErrNotWritten marks a Sync whose write failed and was undone: the log
// is as it was before, the buffered records are dropped, and it may be
// appended to and synced again (after a full disk has some room).
var ErrNotWritten = errors.New("journal records not written")

// Open reads every record of the log at path (creating it if missing),
// truncates a torn tail, and returns the log ready for appends. torn is the
// number of bytes cut away.
func Open(path string) (j *Journal, records [][]string, torn int64, err error) {
	return OpenFS(path, spool.OS{})
}

// OpenFS is Open through fs.
func OpenFS(path string, fs FS) (j *Journal, records [][]string, torn int64, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return create(path, fs)
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("open journal: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("read journal %s: %w", path, err)
	}
	records, good, damage := parse(data)
	if damage.Skipped > 0 {
		f.Close()
		return repair(path, fs, data, records, good, damage)
	}
	torn = int64(len(data)) - good
	if torn > 0 {
		if err = f.Truncate(good); err == nil {
			err = fs.SyncFile(f)
		}
	}
	if err == nil {
		_, err = f.Seek(good, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("truncate journal %s: %w", path, err)
	}
	return &Journal{f: f, path: path, off: good, fs: fs}, records, torn, nil
}

// create makes a new, empty journal. Its name must be durable before any
// record in it is relied on, or a power cut could take the whole file
// away: the folder is fsynced.
func create(path string, fs FS) (*Journal, [][]string, int64, error) {
	f, err := fs.Create(path)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("create journal: %w", err)
	}
	if err := dirSync(fs, filepath.Dir(path)); err != nil {
		f.Close()
		return nil, nil, 0, err
	}
	return &Journal{f: f, path: path, fs: fs}, nil, 0, nil
}

// repair saves the damaged log as path.corrupt, rewrites it with the good
// records and opens the result. torn is the length of a bad tail dropped
// with the damage.
func repair(path string, fs FS, data []byte, records [][]string, good int64, d Damage) (*Journal, [][]string, int64, error) {
	d.File, d.Saved = path, path+".corrupt"
	if err := save(fs, d.Saved, data); err != nil {
		return nil, nil, 0, fmt.Errorf("save damaged journal %s: %w", path, err)
	}
	if err := RewriteFS(path, records, fs); err != nil {
		return nil, nil, 0, err
	}
	j, records, _, err := OpenFS(path, fs)
	if err != nil {
		return nil, nil, 0, err
	}
	j.damage = d
	return j, records, int64(len(data)) - good, nil
}

// save writes data durably to dst, replacing an older dst.
func save(fs FS, dst string, data []byte) error {
	tmp := dst + ".new"
	fs.Remove(tmp) // a leftover of an interrupted save
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	_, err = fs.Write(f, data)
	if err == nil {
		err = fs.SyncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, dst)
	}
	if err != nil {
		fs.Remove(tmp)
		return err
	}
	return dirSync(fs, filepath.Dir(dst))
}

// Damage returns what Open skipped; its zero value when nothing was.
func (j *Journal) Damage() Damage { return j.damage }

// Report logs the damage, if any (event 1030).
func (d Damage) Report(log *zerolog.Logger) {
	if d.Skipped == 0 {
		return
	}
	event.Emit(log, event.JournalDamaged).Str("file", d.File).Int64("offset", d.Offset).
		Int("skipped", d.Skipped).Int("regions", d.Regions).Str("saved", d.Saved).
		Msg("records that failed their checksum were skipped; the good ones after them are kept")
}

// parse reads the records of a log. A record that does not check out is
// skipped when a good record follows it (damage: bit rot, a stray write,
// an editor), and ends the log when none does (a torn tail: good is the
// length of the log up to it).
func parse(data []byte) (records [][]string, good int64, damage Damage) {
	for pos := 0; pos < len(data); {
		nl := bytes.IndexByte(data[pos:], '\n')
		if nl < 0 {
			break // a tail without its line end
		}
		line := data[pos : pos+nl+1]
		if fields, ok := decode(line); ok {
			records = append(records, fields)
			pos += len(line)
			good = int64(pos)
			continue
		}
		next := resync(data, pos+1)
		if next < 0 {
			break // nothing good after it: a torn tail
		}
		if damage.Skipped == 0 {
			damage.Offset = int64(pos)
		}
		damage.Skipped += max(1, bytes.Count(data[pos:next], []byte{'\n'}))
		damage.Regions++
		pos = next
	}
	return records, good, damage
}

// resync returns the offset of the first whole, checksummed record that
// starts at or after from, at a line start or not (a damaged line end
// joins two lines), or -1.
func resync(data []byte, from int) int {
	for p := from; p+11 <= len(data); p++ {
		if !hexPrefix(data[p:]) {
			continue
		}
		nl := bytes.IndexByte(data[p:], '\n')
		if nl < 0 {
			return -1
		}
		if _, ok := decode(data[p : p+nl+1]); ok {
			return p
		}
	}
	return -1
}

// hexPrefix reports whether b starts as a record does: eight lower-case
// hex digits and a space. It lets resync pass over garbage cheaply.
func hexPrefix(b []byte) bool {
	if len(b) < 9 || b[8] != ' ' {
		return false
	}
	for _, c := range b[:8] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func decode(line []byte) ([]string, bool) {
	if len(line) < 11 || len(line) > maxRecord || line[8] != ' ' {
		return nil, false
	}
	body := line[9 : len(line)-1]
	if fmt.Sprintf("%08x", crc32.Checksum(body, castagnoli)) != string(line[:8]) {
		return nil, false
	}
	fields := strings.Split(string(body), " ")
	if Check(fields) != nil {
		return nil, false // not what encode writes, whatever its checksum
	}
	return fields, true
}

func encode(fields []string) ([]byte, error) {
	for _, f := range fields {
		if f == "" || strings.ContainsAny(f, " \r\n") {
			return nil, fmt.Errorf("journal field %q is empty or has a space or line break", f)
		}
	}
	body := strings.Join(fields, " ")
	line := fmt.Sprintf("%08x %s\n", crc32.Checksum([]byte(body), castagnoli), body)
	if len(line) > maxRecord {
		return nil, fmt.Errorf("journal record of %d bytes is too long", len(line))
	}
	return []byte(line), nil
}

// Check reports whether fields make a record Append takes: no empty
// field, no space or line break, and within the length a record may have.
func Check(fields []string) error {
	_, err := encode(fields)
	return err
}

// Append adds a record to the write buffer; it is durable after Sync.
func (j *Journal) Append(fields ...string) error {
	line, err := encode(fields)
	if err != nil {
		return err
	}
	j.buf.Write(line)
	return nil
}

// Sync writes the buffered records and fsyncs the log: the commit point.
// A failed write is undone when it can be (the error is ErrNotWritten);
// after any other failure the journal must be closed and reopened (the
// records that reached the disk are found again by Open).
func (j *Journal) Sync() error {
	if err := j.Write(); err != nil {
		return err
	}
	return j.fsync()
}

// Write writes the buffered records, in one call, without an fsync: they
// survive the process being killed, not a power cut, until the next Sync.
// A failed write is undone as in Sync (ErrNotWritten).
func (j *Journal) Write() error {
	err := j.write(j.buf.Bytes())
	j.buf.Reset()
	return err
}

// Take empties the buffer and returns the records it held, for
// WriteSync: the caller may go on appending the next records while
// those are written and fsynced in another goroutine.
func (j *Journal) Take() []byte {
	b := bytes.Clone(j.buf.Bytes())
	j.buf.Reset()
	return b
}

// WriteSync writes records taken from the buffer (Take) and fsyncs the
// log: the commit point, as Sync is for the buffer, with the same
// errors. It may run beside Append; not beside Sync, Write or another
// WriteSync.
func (j *Journal) WriteSync(records []byte) error {
	if err := j.write(records); err != nil {
		return err
	}
	return j.fsync()
}

func (j *Journal) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := j.fs.Write(j.f, b)
	if err != nil {
		return j.unwrite(err)
	}
	j.off += int64(n)
	return nil
}

func (j *Journal) fsync() error {
	if err := j.fs.SyncFile(j.f); err != nil {
		return fmt.Errorf("fsync journal %s: %w", j.path, err)
	}
	return nil
}

// unwrite cuts a failed write's part-record off the log, so that the log
// ends with its last whole record and the next write goes after it.
func (j *Journal) unwrite(err error) error {
	if terr := j.f.Truncate(j.off); terr != nil {
		return fmt.Errorf("write journal %s: %w (and undoing it: %v)", j.path, err, terr)
	}
	if _, serr := j.f.Seek(j.off, io.SeekStart); serr != nil {
		return fmt.Errorf("write journal %s: %w (and undoing it: %v)", j.path, err, serr)
	}
	return fmt.Errorf("write journal %s: %w: %w", j.path, ErrNotWritten, err)
}

// Close closes the log without syncing the buffer.
func (j *Journal) Close() error { return j.f.Close() }

// Rewrite replaces the log at path with records (compaction): it writes
// path.new, fsyncs it, renames it over the log and fsyncs the folder. The
// caller reopens the log afterwards.
func Rewrite(path string, records [][]string) error {
	return RewriteFS(path, records, spool.OS{})
}

// RewriteFS is Rewrite through fs.
func RewriteFS(path string, records [][]string, fs FS) error {
	tmp := path + ".new"
	fs.Remove(tmp) // a leftover of an interrupted compaction
	f, err := fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("compact journal: %w", err)
	}
	w := bufio.NewWriter(writer{fs, f})
	for _, r := range records {
		line, err := encode(r)
		if err != nil {
			f.Close()
			return err
		}
		w.Write(line)
	}
	err = w.Flush()
	if err == nil {
		err = fs.SyncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err != nil {
		fs.Remove(tmp)
		return fmt.Errorf("compact journal %s: %w", path, err)
	}
	return dirSync(fs, filepath.Dir(path))
}

// writer writes to f through fs.
type writer struct {
	fs FS
	f  *os.File
}

func (w writer) Write(b []byte) (int, error) { return w.fs.Write(w.f, b) }

func dirSync(fs FS, dir string) error {
	if err := fs.SyncDir(dir); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// Read returns the records of the log at path without changing it, for a
// reader beside the daemon that owns the log (popspool queue and show): it
// opens the file read-only, never creates, truncates or repairs it. A torn
// tail (an append in progress, or a crash's) and damaged records are
// skipped; skipped counts the damaged lines. A missing log is an error
// for which errors.Is(err, os.ErrNotExist) holds.
func Read(path string) (records [][]string, skipped int, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("read journal: %w", err)
	}
	records, _, damage := parse(data)
	return records, damage.Skipped, nil
}
