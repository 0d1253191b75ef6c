// Package pickup delivers into a pickup folder, the folder the IIS SMTP
// service (Mailroot\Pickup) and Exchange's Transport service (Pickup,
// Replay) watch and take message files from (KB 885685's third stage).
//
// A message is written as <id>.eml into a staging folder beside the
// pickup folder, on the same volume, and fsynced; the ledger records
// that it is about to appear (P); then it is renamed into the pickup
// folder without replacing. The service sees only complete files, and
// the P record lets a retry after a crash tell a staged copy that is
// complete (rename it in) from one that may be partial (write it again),
// and a staged copy that is gone because it was renamed in (delivered)
// from one never written.
package pickup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"example.org/popspool/shared/spool"
)

// StagingName is the staging folder's name, beside the pickup folder.
const StagingName = "popspool-staging"

// Staging returns the staging folder of the pickup folder dir.
func Staging(dir string) string {
	return filepath.Join(filepath.Dir(filepath.Clean(dir)), StagingName)
}

// Ledger is what the target needs of deliverd's ledger.
type Ledger interface {
	Placing(id string) error
	Placed(id string) bool
}

// Folder is one pickup folder.
type Folder struct {
	Dir     string
	Staging string   // "" is Staging(Dir)
	FS      spool.FS // nil is spool.OS{}
	Ledger  Ledger
}

func (f *Folder) fs() spool.FS {
	if f.FS == nil {
		return spool.OS{}
	}
	return f.FS
}

func (f *Folder) staging() string {
	if f.Staging == "" {
		return Staging(f.Dir)
	}
	return f.Staging
}

// Name is the file name of message id, in staging and in the pickup folder.
func Name(id string) string { return id + ".eml" }

// Deliver puts message id (sender, rcpts, body) into the pickup folder.
// dup is true when an earlier attempt had already put it there.
func (f *Folder) Deliver(id, sender string, rcpts []string, body io.Reader) (dup bool, err error) {
	stage := filepath.Join(f.staging(), Name(id))
	if f.Ledger.Placed(id) {
		return f.finish(stage, id, true)
	}
	if err := os.MkdirAll(f.staging(), 0o700); err != nil {
		return false, fmt.Errorf("pickup staging: %w", err)
	}
	if err := f.write(stage, sender, rcpts, body); err != nil {
		return false, err
	}
	if err := f.Ledger.Placing(id); err != nil {
		return false, fmt.Errorf("pickup: ledger: %w", err)
	}
	return f.finish(stage, id, false)
}

// finish renames the complete staged copy into the pickup folder. After
// a crash (retry), a staged copy that is gone was renamed in already.
func (f *Folder) finish(stage, id string, retry bool) (bool, error) {
	fs := f.fs()
	err := fs.RenameNoReplace(stage, filepath.Join(f.Dir, Name(id)))
	switch {
	case err == nil:
	case errors.Is(err, os.ErrExist): // our own copy, renamed in before a crash
		fs.Remove(stage)
		return true, nil
	case retry && errors.Is(err, os.ErrNotExist):
		return true, nil // renamed in before a crash; the service may have taken it
	default:
		return false, fmt.Errorf("pickup %s: %w", f.Dir, err)
	}
	// The staging folder first: once its old name is durably gone, the
	// rename is durable whole, and a power cut cannot leave the copy in
	// both folders to be placed again after the service took one.
	for _, d := range []string{f.staging(), f.Dir} {
		if err := fs.SyncDir(d); err != nil {
			return false, fmt.Errorf("pickup %s: %w", d, err)
		}
	}
	return retry, nil
}

func (f *Folder) write(path, sender string, rcpts []string, body io.Reader) error {
	fs := f.fs()
	fs.Remove(path) // a partial copy of an interrupted attempt
	file, err := fs.Create(path)
	if err != nil {
		return fmt.Errorf("pickup staging: %w", err)
	}
	w := bufio.NewWriterSize(writer{fs, file}, 64<<10)
	err = Write(w, sender, rcpts, body)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = fs.SyncFile(file)
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		fs.Remove(path)
		return fmt.Errorf("pickup write %s: %w", path, err)
	}
	return nil
}

type writer struct {
	fs spool.FS
	f  *os.File
}

func (w writer) Write(b []byte) (int, error) { return w.fs.Write(w.f, b) }

// Write writes the pickup file format: an X-Sender line and one
// X-Receiver line per recipient, then the message, every line ended by
// CRLF (a bare LF becomes CRLF; a bare CR is left as it is). Nothing else
// is changed: no dot-stuffing, which is SMTP's and not the file's.
func Write(w io.Writer, sender string, rcpts []string, body io.Reader) error {
	var head strings.Builder
	fmt.Fprintf(&head, "X-Sender: <%s>\r\n", sender)
	for _, r := range rcpts {
		fmt.Fprintf(&head, "X-Receiver: <%s>\r\n", r)
	}
	if _, err := io.WriteString(w, head.String()); err != nil {
		return err
	}
	return crlf(w, body)
}

// crlf copies r to w, turning each LF not after a CR into CRLF.
func crlf(w io.Writer, r io.Reader) error {
	buf := make([]byte, 32<<10)
	prevCR := false
	for {
		n, err := r.Read(buf)
		chunk := buf[:n]
		for len(chunk) > 0 {
			i := bytes.IndexByte(chunk, '\n')
			if i < 0 {
				if _, werr := w.Write(chunk); werr != nil {
					return werr
				}
				prevCR = chunk[len(chunk)-1] == '\r'
				break
			}
			cr := prevCR
			if i > 0 {
				cr = chunk[i-1] == '\r'
			}
			line := chunk[:i]
			if _, werr := w.Write(line); werr != nil {
				return werr
			}
			end := "\r\n"
			if cr {
				end = "\n"
			}
			if _, werr := io.WriteString(w, end); werr != nil {
				return werr
			}
			prevCR = false
			chunk = chunk[i+1:]
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Sweep removes staged copies the ledger does not mark as complete and
// about to be renamed in: partial copies a crash left, or copies of
// messages delivered since. deliverd calls it at start, holding the spool
// lock, so no delivery is under way. It returns how many it removed.
func (f *Folder) Sweep() int {
	found, _ := filepath.Glob(filepath.Join(f.staging(), "*.eml"))
	n := 0
	for _, p := range found {
		id := strings.TrimSuffix(filepath.Base(p), ".eml")
		if spool.ValidID(id) && !f.Ledger.Placed(id) && f.fs().Remove(p) == nil {
			n++
		}
	}
	return n
}
