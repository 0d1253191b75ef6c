package service

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/status"
)

// tee sits between a service's logger and its output. Every JSON line
// passes through the status tracker; lines at or above the configured
// level go on to the output, as JSON or, with format "console", as text.
// When the output is the Windows Event Log, the lines must also be at or
// above eventlog_level (default warn), so that the Event Log gets no
// entry for each message fetched, routed or delivered.
// The logger itself logs at info or below whatever the configured level,
// so the status sees fetchd's "mailbox polled" lines even when the
// operator logs only warnings.
type tee struct {
	track    *status.Tracker
	mu       sync.Mutex
	out      io.Writer
	eventLog bool // the output is the Windows Event Log: JSON, and eventlog_level applies
	min      zerolog.Level
	console  io.Writer
}

func newTee(out io.Writer, track *status.Tracker) *tee {
	return &tee{track: track, out: out, min: zerolog.InfoLevel}
}

func (t *tee) Write(p []byte) (int, error) {
	lvl := t.track.Observe(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	if lvl < t.min {
		return len(p), nil
	}
	w := t.out
	if t.console != nil {
		w = t.console
	}
	if _, err := w.Write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// logger configures the tee for cfg and returns a logger writing to it.
// cfg has been validated, so its level and format are known.
func (t *tee) logger(name string, cfg config.Log) zerolog.Logger {
	min := parseLevel(cfg.Level)
	t.mu.Lock()
	if t.eventLog {
		min = max(min, parseLevel(cfg.EventLogLevel))
	}
	t.min, t.console = min, nil
	if cfg.Format == "console" && !t.eventLog {
		t.console = zerolog.ConsoleWriter{Out: t.out, TimeFormat: time.RFC3339}
	}
	t.mu.Unlock()
	level := cfg.Level
	if min > zerolog.InfoLevel {
		level = "info"
	}
	log, err := event.NewLogger(t, name, level, "json")
	if err != nil {
		panic(err) // level is one NewLogger knows
	}
	return log
}

// parseLevel reads a validated level name; "" is info.
func parseLevel(name string) zerolog.Level {
	l, err := zerolog.ParseLevel(name)
	if err != nil || name == "" {
		return zerolog.InfoLevel
	}
	return l
}

// eventRecord turns a JSON log line into what the Windows Event Log
// takes: the event ID (1000 for a line without one), the level, and the
// text: the message, then each other field on a line of its own.
func eventRecord(p []byte) (uint32, zerolog.Level, string) {
	fields := map[string]any{}
	d := json.NewDecoder(bytes.NewReader(p))
	d.UseNumber()
	if err := d.Decode(&fields); err != nil {
		return 1000, zerolog.NoLevel, strings.TrimSpace(string(p))
	}
	id := uint32(1000)
	if n, ok := fields["event"].(json.Number); ok {
		if v, err := n.Int64(); err == nil && v > 0 && v < 65536 {
			id = uint32(v)
		}
	}
	lvl := zerolog.NoLevel
	if s, ok := fields["level"].(string); ok {
		if l, err := zerolog.ParseLevel(s); err == nil {
			lvl = l
		}
	}
	var b strings.Builder
	b.WriteString(fmt.Sprint(fields["message"]))
	if def, ok := event.Lookup(event.ID(id)); ok {
		fmt.Fprintf(&b, "\r\n\r\nevent %d: %s (docs/events.md)", id, def.Name)
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		switch k {
		case "message", "level", "time", "event", "daemon":
		default:
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "\r\n%s: %v", k, fields[k])
	}
	return id, lvl, b.String()
}
