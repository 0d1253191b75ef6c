package chaos

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"example.org/popspool/spooltest/smtpsink"
)

// Want is a message that must arrive exactly once.
type Want struct {
	Name string // for the report: the mailbox file, or the copied file
	Wire []byte // the bytes the target must receive after fetchd's trace lines (or, copied, all of them)
	// Copied: dropped into incoming/ by hand, so it carries no trace lines
	// and rewrited gives it an id (event 1012).
	Copied bool
}

// Input is what the checker looks at after the flow settled and every
// daemon stopped.
type Input struct {
	Account   string
	Want      []Want
	Garbage   [][]byte          // payloads dropped into incoming/: each must be in failed/, once, with a reason
	DotFiles  map[string][]byte // path -> content: must be left alone
	Delivered []smtpsink.Message
	Spool     string
	Logs      string
	Windows   map[string]int      // W records per id (Windows.Counts)
	CopyIDs   map[string][]string // copied file name -> ids rewrited gave it
	Secrets   []string            // must appear in no log and no spool file
}

// Result sums up the check. Problems lists every violation; the run
// passed when it is empty.
type Result struct {
	Messages   int // wanted
	Delivered  int // wanted messages delivered (once or more)
	Failed     int // wanted messages in failed/ or badmail/ with a reason: each a problem
	Lost       int
	Duplicated int // extra copies delivered
	Strange    int // delivered messages nobody wanted
	Leftover   int // files in incoming/, pickup/, deferred/, tmp/
	Problems   []string
}

func (r *Result) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

var receivedID = regexp.MustCompile(`\bwith POP3S? id ([0-9A-Z]{26});`)

// delivered is what the target got of one message: its copies and the
// spool id each came under ("" for copied files).
type delivered struct{ ids []string }

// Verify checks the invariants of notes/reliability.md §9 that the files
// can show: every wanted message delivered exactly once, byte-identical
// (one in failed/ or badmail/ is a false quarantine, a problem too); every extra copy covered by a W
// record of its id; nothing unexpected delivered; incoming/, pickup/,
// deferred/ and tmp/ empty; garbage in failed/ once, dot-files untouched;
// no id in two folders; journals parsing to the end; no secret in any log
// or spool file.
func Verify(in Input) Result {
	r := Result{Messages: len(in.Want)}
	got := map[[32]byte]*delivered{}
	marker := []byte("X-Popspool-Account: " + in.Account + "\r\n")
	for _, m := range in.Delivered {
		body, id := m.Data, ""
		if i := bytes.Index(m.Data, marker); i >= 0 && bytes.HasPrefix(m.Data, []byte("Received: ")) {
			body = m.Data[i+len(marker):]
			if sm := receivedID.FindSubmatch(m.Data[:i]); sm != nil {
				id = string(sm[1])
			}
		}
		h := sha256.Sum256(body)
		d := got[h]
		if d == nil {
			d = &delivered{}
			got[h] = d
		}
		d.ids = append(d.ids, id)
	}
	failedFiles := readFolder(in.Spool, "failed", "badmail")
	for _, w := range in.Want {
		h := sha256.Sum256(w.Wire)
		d := got[h]
		delete(got, h)
		switch {
		case d == nil:
			if where, reason := findFailed(failedFiles, w.Wire); where != "" {
				// Every wanted message is good mail: one set aside is a
				// false quarantine (issue 11.2), whatever the reason.
				r.Failed++
				r.problem("good message quarantined: %s is in %s (%s)", w.Name, where, reason)
				continue
			}
			r.Lost++
			r.problem("lost: %s (%d bytes) was neither delivered nor put in failed/ or badmail/", w.Name, len(w.Wire))
		default:
			r.Delivered++
			r.Duplicated += len(d.ids) - 1
			if len(d.ids) > 1 {
				r.checkDuplicate(in, w, d.ids)
			}
		}
	}
	for _, d := range got {
		r.Strange += len(d.ids)
		r.problem("delivered but never wanted (or not byte-identical): %d copies, ids %v", len(d.ids), d.ids)
	}
	r.checkFolders(in, failedFiles)
	r.checkJournals(in.Spool)
	r.checkSecrets(in)
	return r
}

// checkDuplicate accepts extra copies only under the same spool id and
// covered by that id's W records (the one window no SMTP client can
// close); a second id means the message was fetched twice.
func (r *Result) checkDuplicate(in Input, w Want, ids []string) {
	if w.Copied {
		wins := 0
		for _, id := range in.CopyIDs[w.Name] {
			wins += in.Windows[id]
		}
		if len(ids)-1 > wins {
			r.problem("duplicate: copied file %s delivered %d times, ids %v have %d W records", w.Name, len(ids), in.CopyIDs[w.Name], wins)
		}
		return
	}
	per := map[string]int{}
	for _, id := range ids {
		per[id]++
	}
	if len(per) > 1 {
		r.problem("duplicate: %s delivered under %d spool ids %v: fetched more than once", w.Name, len(per), ids)
		return
	}
	for id, n := range per {
		if n-1 > in.Windows[id] {
			r.problem("duplicate: %s (id %s) delivered %d times with %d W records", w.Name, id, n, in.Windows[id])
		}
	}
}

type spoolFile struct {
	folder, name string
	data         []byte
}

func readFolder(spool string, folders ...string) []spoolFile {
	var out []spoolFile
	for _, f := range folders {
		entries, _ := os.ReadDir(filepath.Join(spool, f))
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(spool, f, e.Name()))
			if err == nil {
				out = append(out, spoolFile{f, e.Name(), b})
			}
		}
	}
	return out
}

// findFailed returns the file in failed/ or badmail/ that holds wire and
// its reason line, "" if none.
func findFailed(files []spoolFile, wire []byte) (where, reason string) {
	for _, f := range files {
		if r := reasonOf(f.data); r != "" && bytes.Contains(f.data, wire) {
			return f.folder + "/" + f.name, r
		}
	}
	return "", ""
}

// reasonOf returns the X-Popspool-Failed or X-Popspool-Last-Error line at
// the top of a spool file, "" if it has none.
func reasonOf(b []byte) string {
	head := b[:min(len(b), 4096)]
	for _, key := range []string{"X-Popspool-Failed: ", "X-Popspool-Last-Error: "} {
		if i := bytes.Index(head, []byte(key)); i >= 0 {
			line, _, _ := bytes.Cut(head[i:], []byte("\r\n"))
			return string(line)
		}
	}
	return ""
}

var idName = regexp.MustCompile(`^([0-9A-Z]{26})(-\d+)?\.eml$`)

func (r *Result) checkFolders(in Input, failed []spoolFile) {
	for _, d := range []string{"incoming", "pickup", "deferred", "tmp/fetchd", "tmp/rewrited", "tmp/deliverd"} {
		entries, _ := os.ReadDir(filepath.Join(in.Spool, d))
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			r.Leftover++
			r.problem("left over: %s/%s", d, e.Name())
		}
	}
	seen := map[string]string{}
	for _, f := range failed {
		if m := idName.FindStringSubmatch(f.name); m != nil {
			if prev, ok := seen[m[1]]; ok {
				r.problem("id %s in two places: %s and %s/%s", m[1], prev, f.folder, f.name)
			}
			seen[m[1]] = f.folder + "/" + f.name
		}
		if reasonOf(f.data) == "" {
			r.problem("%s/%s has no X-Popspool-Failed or X-Popspool-Last-Error line", f.folder, f.name)
		}
	}
	for i, g := range in.Garbage {
		n := 0
		for _, f := range failed {
			if f.folder == "failed" && bytes.Contains(f.data, g) {
				n++
			}
		}
		if n != 1 {
			r.problem("garbage file %d is in failed/ %d times, want once", i, n)
		}
	}
	paths := make([]string, 0, len(in.DotFiles))
	for p := range in.DotFiles {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, in.DotFiles[p]) {
			r.problem("dot-file %s was touched: %v", p, err)
		}
	}
}

// checkJournals: every journal in state/ parses to its end (the daemons
// stopped cleanly, so no torn tail may remain).
func (r *Result) checkJournals(spool string) {
	paths, _ := filepath.Glob(filepath.Join(spool, "state", "*.uidl"))
	paths = append(paths, filepath.Join(spool, "state", "deliverd.ledger"))
	for _, p := range paths {
		_, _, torn, err := ReadJournal(p)
		if err != nil && !os.IsNotExist(err) {
			r.problem("journal %s: %v", p, err)
		}
		if torn > 0 {
			r.problem("journal %s does not parse to its end: %d bytes after the last good record", p, torn)
		}
	}
}

// checkSecrets greps every log and spool file for the secrets, also in
// base64 (an AUTH PLAIN payload).
func (r *Result) checkSecrets(in Input) {
	var needles [][]byte
	for _, s := range in.Secrets {
		needles = append(needles, []byte(s), []byte(base64.StdEncoding.EncodeToString([]byte(s))))
	}
	for _, root := range []string{in.Logs, in.Spool} {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			for _, n := range needles {
				if bytes.Contains(b, n) {
					r.problem("secret %q found in %s", n, path)
				}
			}
			return nil
		})
	}
}
