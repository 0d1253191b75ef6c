package admin

import (
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"example.org/popspool/shared/spool"
)

// Entry is one message of the listing: the JSON object of queue -json.
type Entry struct {
	ID           string    `json:"id"`    // the spool id, or the file name when it is not an id
	Where        string    `json:"where"` // incoming, pickup, deferred, failed, badmail, tmp/<daemon>
	Path         string    `json:"path"`
	Fetched      time.Time `json:"fetched"`               // from the id (when fetchd made it); the file's mtime for other names
	AgeSeconds   int64     `json:"age_seconds"`           // since Fetched
	Size         int64     `json:"size"`                  // of the file, envelope lines included
	Account      string    `json:"account"`               // X-Popspool-Account
	Target       string    `json:"target"`                // the delivery target it will use (X-Popspool-Target, else its account's, else "default"); "" unknown
	Sender       string    `json:"sender"`                // "" is the null sender <>
	SenderSource string    `json:"sender_source"`         // X-Sender, or the header field it was taken from before routing
	Recipients   []string  `json:"recipients"`            // X-Receiver lines
	Originals    []string  `json:"originals"`             // the addresses they were found as (ORCPT), where recorded
	HeaderTo     []string  `json:"header_to"`             // To and Cc, for a file not routed yet
	Attempts     int       `json:"attempts"`              // X-Popspool-Attempts
	NextAttempt  time.Time `json:"next_attempt,omitzero"` // X-Popspool-Next-Attempt (deferred/); absent when none
	LastError    string    `json:"last_error"`            // X-Popspool-Last-Error
	Failed       string    `json:"failed"`                // X-Popspool-Failed: why rewrited set it aside ("<event> <reason>")
	Downloading  bool      `json:"downloading"`           // a .part fetchd is writing
	Held         bool      `json:"held"`                  // .hold-<id>.eml: left alone by the daemons until released
	Notes        []string  `json:"notes"`                 // what is wrong with the file's top lines
	Error        string    `json:"error,omitempty"`       // the file could not be read
}

// file is one directory entry to read.
type file struct{ place, name string }

// list returns the files of every place the filter wants, in pipeline
// order. A place that does not exist is empty (a spool the daemons never
// started on).
func list(root string, f *Filter) ([]file, error) {
	var out []file
	for _, p := range places {
		if !f.wantPlace(p) {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(p)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", p, err)
		}
		for _, e := range entries {
			if listed(p, e.Name(), e.IsDir()) {
				out = append(out, file{p, e.Name()})
			}
		}
	}
	return out, nil
}

// listed reports whether a directory entry is a message: not a dot-file
// (but a held message, .hold-<id>.eml, is one), not a folder; in a daemon's tmp/, only its claimed .eml files (and
// fetchd's .part downloads), not the .part or .new versions being written
// beside a claimed file, which would count the message twice.
func listed(place, name string, dir bool) bool {
	if dir {
		return false
	}
	if held, ok := strings.CutPrefix(name, HoldPrefix); ok {
		return !strings.HasPrefix(place, spool.Tmp) && strings.HasSuffix(held, ".eml")
	}
	if strings.HasPrefix(name, ".") {
		return false
	}
	switch place {
	case spool.Tmp + "/fetchd":
		return strings.HasSuffix(name, ".part") || strings.HasSuffix(name, ".eml")
	case spool.Tmp + "/rewrited", spool.Tmp + "/deliverd":
		return strings.HasSuffix(name, ".eml")
	}
	return true
}

// scan reads the top of every file, several at a time, and returns the
// entries in the order of files. Files gone meanwhile (moved on by a
// daemon) are dropped.
func scan(root string, files []file, now time.Time) []Entry {
	out := make([]Entry, len(files))
	gone := make([]bool, len(files))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(files), 2*runtime.GOMAXPROCS(0)+2) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(files) {
					return
				}
				out[i], gone[i] = read(root, files[i], now)
			}
		}()
	}
	wg.Wait()
	kept := out[:0]
	for i := range out {
		if !gone[i] {
			kept = append(kept, out[i])
		}
	}
	return slices.Clip(kept)
}

// read makes the entry of one file; gone says the file vanished.
func read(root string, fl file, now time.Time) (e Entry, gone bool) {
	e = Entry{Where: fl.place, Path: filepath.Join(root, filepath.FromSlash(fl.place), fl.name)}
	name, held := strings.CutPrefix(fl.name, HoldPrefix)
	e.ID, e.Held = strings.TrimSuffix(strings.TrimSuffix(name, ".part"), ".eml"), held
	e.Downloading = strings.HasSuffix(fl.name, ".part")
	if id, ok := idOf(name); ok {
		e.ID, e.Fetched = id, spool.IDTime(id)
	}
	f, err := openHead(e.Path)
	if errors.Is(err, os.ErrNotExist) {
		return e, true
	}
	if err != nil {
		e.Error = err.Error()
		return e, false
	}
	defer f.Close()
	e.Size = f.size
	if e.Fetched.IsZero() {
		e.Fetched = f.mtime
	}
	t, err := readTop(f, false)
	if err != nil {
		e.Error = err.Error()
	}
	e.fill(t)
	e.AgeSeconds = int64(now.Sub(e.Fetched) / time.Second)
	return e, false
}

// addressList returns the addresses of a To or Cc value; a value
// net/mail cannot parse is split at commas.
func addressList(v string) []string {
	var out []string
	if list, err := mail.ParseAddressList(v); err == nil {
		for _, a := range list {
			out = append(out, a.Address)
		}
		return out
	}
	for _, a := range strings.Split(v, ",") {
		if a = address(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// idOf is spool.IDOf for .eml files and fetchd's .part downloads.
func idOf(name string) (string, bool) {
	if n, ok := strings.CutSuffix(name, ".part"); ok {
		return spool.IDOf(n + ".eml")
	}
	return spool.IDOf(name)
}

// fill copies what the top lines say into e.
func (e *Entry) fill(t *top) {
	e.Account = t.first["x-popspool-account"]
	e.Sender, e.SenderSource = t.sender()
	e.Recipients = t.env.Receivers
	for _, r := range t.env.Receivers {
		if o := t.env.Originals[r]; o != "" {
			e.Originals = append(e.Originals, o)
		}
	}
	if len(e.Recipients) == 0 {
		for _, k := range []string{"To", "Cc"} {
			for _, v := range t.values(k) {
				e.HeaderTo = append(e.HeaderTo, addressList(v)...)
			}
		}
	}
	e.Attempts, e.NextAttempt, e.LastError, e.Failed = t.env.Attempts, t.env.NextAttempt, t.env.LastError, t.env.Failed
	e.Notes = t.notes
	e.Target = t.env.Target
}
