// Package journal is an append-only log of small records, each checksummed,
// for fetchd's UIDL journals and deliverd's delivery ledger.
//
// A record is one line: the CRC-32C of the rest in hex, a space, and the
// fields separated by spaces. A crash can leave a torn last line; Open
// truncates the log at the first record that does not check out, so a
// record is either whole or absent.
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
	f    *os.File
	path string
	off  int64 // the log's length: where the next write goes
	buf  bytes.Buffer
	fs   FS
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
	records, good, err := readAll(f)
	if err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("read journal %s: %w", path, err)
	}
	end, err := f.Seek(0, io.SeekEnd)
	if err == nil && end > good {
		torn = end - good
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

func readAll(f *os.File) (records [][]string, good int64, err error) {
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, io.EOF) || errors.Is(err, bufio.ErrBufferFull) {
			return records, good, nil // torn or oversized tail
		}
		if err != nil {
			return nil, 0, err
		}
		fields, ok := decode(line)
		if !ok {
			return records, good, nil
		}
		records = append(records, fields)
		good += int64(len(line))
	}
}

func decode(line []byte) ([]string, bool) {
	if len(line) < 11 || len(line) > maxRecord || line[8] != ' ' {
		return nil, false
	}
	body := line[9 : len(line)-1]
	if fmt.Sprintf("%08x", crc32.Checksum(body, castagnoli)) != string(line[:8]) {
		return nil, false
	}
	return strings.Split(string(body), " "), true
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
	if j.buf.Len() > 0 {
		n, err := j.fs.Write(j.f, j.buf.Bytes())
		j.buf.Reset()
		if err != nil {
			return j.unwrite(err)
		}
		j.off += int64(n)
	}
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
