// Package status is what an operator sees at a glance: each daemon keeps
// status/<daemon>.json in the spool up to date, and Report turns those
// files and a look at the spool folders into one table.
//
// A daemon learns what to put there from its own log: every JSON line
// passes through a Tracker (service.Run puts it between the logger and
// stderr), which counts events, remembers the last error and, from
// fetchd's "mailbox polled" lines, each account's last poll. The daemons
// themselves need not know the status file exists.
package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"example.org/popspool/shared/spool"
)

// File is the content of status/<daemon>.json.
type File struct {
	Daemon       string              `json:"daemon"`
	Version      string              `json:"version"`
	PID          int                 `json:"pid"`
	State        string              `json:"state"` // starting, running, reloading, stopping, stopped, failed
	Config       string              `json:"config,omitempty"`
	Started      time.Time           `json:"started"`
	Updated      time.Time           `json:"updated"` // rewritten at least every Heartbeat while running
	Stopped      time.Time           `json:"stopped,omitzero"`
	LastActivity time.Time           `json:"last_activity,omitzero"` // the last log line with an event
	Folders      map[string]Folder   `json:"folders,omitempty"`
	LastError    *Problem            `json:"last_error,omitempty"` // the last error or fatal line with an event
	Accounts     map[string]*Account `json:"accounts,omitempty"`   // fetchd
	Events       map[int]*Count      `json:"events,omitempty"`     // log lines per event ID since start
}

// Folder is the content of one spool folder. Oldest is the modification
// time of its oldest file: when that file was last written (fetched,
// routed, or retried), not necessarily when the message arrived.
type Folder struct {
	Files  int       `json:"files"`
	Bytes  int64     `json:"bytes"`
	Oldest time.Time `json:"oldest,omitzero"`
}

// Problem is one logged error.
type Problem struct {
	Event   int       `json:"event"`
	Name    string    `json:"name"` // the event's name in docs/events.md
	Message string    `json:"message"`
	Error   string    `json:"error,omitempty"` // the line's error or reason field
	Account string    `json:"account,omitempty"`
	Time    time.Time `json:"time"`
}

// Account is what fetchd logged about one POP3 account.
type Account struct {
	LastPoll  time.Time `json:"last_poll,omitzero"`  // the last "mailbox polled" (2001) line
	LastOK    time.Time `json:"last_ok,omitzero"`    // the last one that succeeded
	Fetched   int       `json:"fetched"`             // messages fetched by the last poll
	Total     int       `json:"total"`               // messages fetched since start
	SetAside  int       `json:"set_aside,omitempty"` // messages on the server that cannot be downloaded (2032)
	LastError *Problem  `json:"last_error,omitempty"`
}

// Count sums the log lines of one event.
type Count struct {
	Level     string  `json:"level"`
	N         uint64  `json:"n"`
	Bytes     int64   `json:"bytes,omitempty"`      // sum of the lines' size (or bytes) fields
	Timed     uint64  `json:"timed,omitempty"`      // lines with an elapsed_ms field
	ElapsedMS float64 `json:"elapsed_ms,omitempty"` // their sum
}

// Heartbeat is how often a running daemon rewrites its status file even
// when nothing changed; a file older than Stale means the daemon is gone.
const (
	Heartbeat = 30 * time.Second
	Stale     = 4 * Heartbeat
)

// Path returns the status file of daemon in the spool at root.
func Path(root, daemon string) string {
	return filepath.Join(root, spool.Status, daemon+".json")
}

// Save writes f atomically: into a temporary file in status/ (its name
// starts with "." so readers skip it), fsynced, then renamed over the old
// one, so a reader sees the old or the new file, never half of one.
func Save(root string, f *File) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	dst := Path(root, f.Daemon)
	tmp := filepath.Join(filepath.Dir(dst), "."+f.Daemon+".json.tmp")
	w, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	if err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("status file: %w", err)
	}
	return nil
}

// Load reads the status file of daemon. A missing file is reported with
// an error that matches os.ErrNotExist.
func Load(root, daemon string) (*File, error) {
	b, err := os.ReadFile(Path(root, daemon))
	if err != nil {
		return nil, err
	}
	f := &File{}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("%s: %w", Path(root, daemon), err)
	}
	if f.Daemon != daemon {
		return nil, errors.New(Path(root, daemon) + ": written by " + f.Daemon)
	}
	return f, nil
}
