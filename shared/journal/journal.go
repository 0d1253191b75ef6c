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
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maxRecord bounds a record; longer lines are corruption.
const maxRecord = 4096

// Journal is an open log, positioned for appending.
type Journal struct {
	f    *os.File
	path string
	buf  bytes.Buffer
}

// Open reads every record of the log at path (creating it if missing),
// truncates a torn tail, and returns the log ready for appends. torn is the
// number of bytes cut away.
func Open(path string) (j *Journal, records [][]string, torn int64, err error) {
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("open journal: %w", err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		// A new journal's name must be durable before any record in it
		// is relied on, or a power cut could take the whole file away.
		if err := syncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, nil, 0, err
		}
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
			err = f.Sync()
		}
	}
	if err == nil {
		_, err = f.Seek(good, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, nil, 0, fmt.Errorf("truncate journal %s: %w", path, err)
	}
	return &Journal{f: f, path: path}, records, torn, nil
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
// After a failed Sync the journal must be closed and reopened (the records
// that reached the disk are found again by Open).
func (j *Journal) Sync() error {
	if j.buf.Len() > 0 {
		_, err := j.f.Write(j.buf.Bytes())
		j.buf.Reset()
		if err != nil {
			return fmt.Errorf("write journal %s: %w", j.path, err)
		}
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("fsync journal %s: %w", j.path, err)
	}
	return nil
}

// Close closes the log without syncing the buffer.
func (j *Journal) Close() error { return j.f.Close() }

// Rewrite replaces the log at path with records (compaction): it writes
// path.new, fsyncs it, renames it over the log and fsyncs the folder. The
// caller reopens the log afterwards.
func Rewrite(path string, records [][]string) error {
	tmp := path + ".new"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("compact journal: %w", err)
	}
	w := bufio.NewWriter(f)
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
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compact journal %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !isUnsupported(err) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
