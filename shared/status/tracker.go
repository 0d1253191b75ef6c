package status

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/event"
)

// Tracker builds a daemon's File from its log lines and folder scans. It
// is safe for concurrent use.
type Tracker struct {
	mu sync.Mutex
	f  File
}

// NewTracker starts the status of daemon, now.
func NewTracker(daemon, version string) *Tracker {
	return &Tracker{f: File{
		Daemon: daemon, Version: version, PID: os.Getpid(), State: "starting",
		Started: time.Now().UTC(), Accounts: map[string]*Account{}, Events: map[int]*Count{},
	}}
}

// line holds the fields of a log line the tracker reads. Lines are
// zerolog's JSON: "level", "time", "message", and the event's own fields
// (docs/events.md names them).
type line struct {
	Level     string    `json:"level"`
	Time      time.Time `json:"time"`
	Message   string    `json:"message"`
	Event     int       `json:"event"`
	Error     string    `json:"error"`
	Reason    string    `json:"reason"`
	Account   string    `json:"account"`
	OK        *bool     `json:"ok"`
	Fetched   int       `json:"fetched"`
	SetAside  *int      `json:"set_aside"`
	Size      int64     `json:"size"`
	Bytes     int64     `json:"bytes"`
	ElapsedMS *float64  `json:"elapsed_ms"`
}

// Observe reads the log lines in p (zerolog writes one per call) and
// returns the level of the last one; zerolog.NoLevel when it has none or
// is not JSON (such lines are not counted).
func (t *Tracker) Observe(p []byte) zerolog.Level {
	lvl := zerolog.NoLevel
	for _, raw := range bytes.Split(p, []byte("\n")) {
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		var l line
		if !scanLine(raw, &l) {
			l = line{}
			// A field of an unexpected type spoils only that field.
			var typeErr *json.UnmarshalTypeError
			if err := json.Unmarshal(raw, &l); err != nil && !errors.As(err, &typeErr) {
				continue
			}
		}
		lvl = parseLevel(l.Level)
		if l.Event != 0 {
			t.observe(&l, lvl)
		}
	}
	return lvl
}

func parseLevel(s string) zerolog.Level {
	if s == "" {
		return zerolog.NoLevel
	}
	lvl, err := zerolog.ParseLevel(s)
	if err != nil {
		return zerolog.NoLevel
	}
	return lvl
}

func (t *Tracker) observe(l *line, lvl zerolog.Level) {
	if l.Time.IsZero() {
		l.Time = time.Now()
	}
	l.Time = l.Time.UTC()
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.f.Events[l.Event]
	if c == nil {
		c = &Count{Level: l.Level}
		t.f.Events[l.Event] = c
	}
	c.N++
	if l.Size > 0 {
		c.Bytes += l.Size
	} else if l.Bytes > 0 {
		c.Bytes += l.Bytes
	}
	if l.ElapsedMS != nil {
		c.Timed++
		c.ElapsedMS += *l.ElapsedMS
	}
	t.f.LastActivity = l.Time
	var p *Problem
	if lvl >= zerolog.ErrorLevel && lvl < zerolog.NoLevel {
		p = problem(l)
		t.f.LastError = p
	}
	if l.Account != "" {
		t.account(l, p)
	}
}

func problem(l *line) *Problem {
	p := &Problem{Event: l.Event, Message: l.Message, Error: l.Error, Account: l.Account, Time: l.Time}
	if p.Error == "" {
		p.Error = l.Reason
	}
	if d, ok := event.Lookup(event.ID(l.Event)); ok {
		p.Name = d.Name
	}
	return p
}

// account records fetchd's per-account lines: "mailbox polled" (2001)
// with its ok, fetched and set_aside fields, and any error naming the
// account.
func (t *Tracker) account(l *line, p *Problem) {
	a := t.f.Accounts[l.Account]
	if a == nil {
		a = &Account{}
		t.f.Accounts[l.Account] = a
	}
	if p != nil {
		a.LastError = p
	}
	if event.ID(l.Event) != event.FetchSession {
		return
	}
	a.LastPoll = l.Time
	a.Fetched = l.Fetched
	if l.SetAside != nil {
		a.SetAside = *l.SetAside
	}
	a.Total += l.Fetched
	if l.OK == nil || *l.OK {
		a.LastOK = l.Time
	} else if p == nil && a.LastError == nil {
		a.LastError = problem(l)
	}
}

// SetState records the daemon's life-cycle state and config file; an
// empty argument leaves the old value.
func (t *Tracker) SetState(state, config string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if state != "" {
		t.f.State = state
	}
	if config != "" {
		t.f.Config = config
	}
	if state == "stopped" || state == "failed" {
		t.f.Stopped = time.Now().UTC()
	}
}

// SetFolders records a scan of the spool folders.
func (t *Tracker) SetFolders(folders map[string]Folder) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.f.Folders = folders
}

// Snapshot returns a deep copy of the current status.
func (t *Tracker) Snapshot() File {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.f
	f.Folders = make(map[string]Folder, len(t.f.Folders))
	for k, v := range t.f.Folders {
		f.Folders[k] = v
	}
	f.Accounts = make(map[string]*Account, len(t.f.Accounts))
	for k, v := range t.f.Accounts {
		a := *v
		a.LastError = clone(v.LastError)
		f.Accounts[k] = &a
	}
	f.Events = make(map[int]*Count, len(t.f.Events))
	for k, v := range t.f.Events {
		c := *v
		f.Events[k] = &c
	}
	f.LastError = clone(t.f.LastError)
	return f
}

func clone(p *Problem) *Problem {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}
