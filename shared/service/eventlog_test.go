package service

import (
	"fmt"
	"strings"
	"testing"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/status"
)

// teeEvents logs an info (2002), a warning (2008) and an error (2005)
// line through a tee and returns the event numbers that reached its
// output, and the tracker.
func teeEvents(t *testing.T, eventLog bool, cfg config.Log) (string, *status.Tracker) {
	t.Helper()
	var out syncBuf
	tr := status.NewTracker("fetchd", "1")
	te := newTee(&out, tr)
	te.eventLog = eventLog
	log := te.logger("fetchd", cfg)
	event.Emit(&log, event.Fetched).Int64("size", 10).Msg("fetched")
	event.Emit(&log, event.SessionCut).Msg("cut")
	event.Emit(&log, event.LoginFailed).Msg("login refused")
	var got []string
	for _, l := range strings.Split(out.String(), "\n") {
		if l == "" {
			continue
		}
		if !strings.HasPrefix(l, "{") {
			t.Fatalf("not a JSON line: %q", l)
		}
		id, _, _ := eventRecord([]byte(l))
		got = append(got, fmt.Sprint(id))
	}
	return strings.Join(got, " "), tr
}

// The Event Log gets only lines at or above both level and
// eventlog_level; other outputs ignore eventlog_level; the status counts
// every line either way.
func TestEventLogLevel(t *testing.T) {
	for _, c := range []struct {
		eventLog bool
		cfg      config.Log
		want     string
	}{
		{true, config.Log{Level: "info", Format: "json", EventLogLevel: "warn"}, "2008 2005"},
		{true, config.Log{Level: "info", Format: "console", EventLogLevel: "warn"}, "2008 2005"},
		{true, config.Log{Level: "debug", Format: "json", EventLogLevel: "info"}, "2002 2008 2005"},
		{true, config.Log{Level: "error", Format: "json", EventLogLevel: "info"}, "2005"},
		{true, config.Log{Level: "info", Format: "json", EventLogLevel: "error"}, "2005"},
		{false, config.Log{Level: "info", Format: "json", EventLogLevel: "error"}, "2002 2008 2005"},
	} {
		got, tr := teeEvents(t, c.eventLog, c.cfg)
		if got != c.want {
			t.Errorf("Event Log %v, %+v: events %q written, want %q", c.eventLog, c.cfg, got, c.want)
		}
		if e := tr.Snapshot().Events[2002]; e == nil || e.N != 1 || e.Bytes != 10 {
			t.Errorf("%+v: the status did not count the info line: %+v", c.cfg, e)
		}
	}
}

// log.level = "trace" makes the daemon's logger build transcripts and the
// tee write them; at debug, or for the Event Log (never below
// eventlog_level), no transcript is even built.
func TestTraceLevelTranscripts(t *testing.T) {
	for _, c := range []struct {
		eventLog bool
		cfg      config.Log
		want     bool
	}{
		{false, config.Log{Level: "trace", Format: "json"}, true},
		{false, config.Log{Level: "trace", Format: "console"}, true},
		{false, config.Log{Level: "debug", Format: "json"}, false},
		{true, config.Log{Level: "trace", Format: "json", EventLogLevel: "warn"}, false},
	} {
		var out syncBuf
		te := newTee(&out, status.NewTracker("fetchd", "1"))
		te.eventLog = c.eventLog
		log := te.logger("fetchd", c.cfg)
		tr := event.Transcript(log)
		if (tr != nil) != c.want {
			t.Errorf("Event Log %v, %+v: transcript on = %v, want %v", c.eventLog, c.cfg, tr != nil, c.want)
			continue
		}
		if tr != nil {
			tr('C', "NOOP")
			if !strings.Contains(out.String(), "NOOP") {
				t.Errorf("%+v: the transcript line did not reach the output: %q", c.cfg, out.String())
			}
		}
	}
}
