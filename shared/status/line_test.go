package status

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// zerologLines are lines as the daemons write them: every kind of field
// zerolog has, and the fields the tracker reads with awkward values.
func zerologLines(t testing.TB) [][]byte {
	var b bytes.Buffer
	zerolog.TimeFieldFormat = time.RFC3339Nano
	log := zerolog.New(&b).With().Timestamp().Logger()
	log.Info().Int("event", 4001).Str("id", "01M9").Str("from", "a@x").Strs("to", []string{"b@y", "c@z"}).
		Int("attempt", 1).Int64("size", 10240).Float64("elapsed_ms", 1.25).Msg("delivered")
	log.Warn().Int("event", 4006).Str("id", "x").Err(errors.New(`open "a\b": é failed` + "\t\x01")).Msg("will retry")
	log.Error().Int("event", 2003).Str("account", "bob@pop").Bool("ok", false).Int("fetched", 3).Int("set_aside", 0).
		Interface("panic", map[string]any{"a": []any{1, "x", nil, true, map[string]any{}}}).Msg("mailbox polled")
	log.Info().Int("event", 2001).Str("account", "ünï").Bool("ok", true).Int64("bytes", 1<<40).Float64("elapsed_ms", 1e-7).Msg("")
	log.Debug().Str("message2", "x").Msg("no event")
	lines := bytes.Split(bytes.TrimSpace(b.Bytes()), []byte("\n"))
	return append(lines,
		[]byte(`{"event":1,"Event":2}`),
		[]byte(`{"event":1.5,"level":"info"}`),
		[]byte(`{"event":"1"}`),
		[]byte(`{"level":null,"event":3}`),
		[]byte(`{"time":"2026-12-07T10:00:00Z","event":4}`),
		[]byte(`{"time":"2026-12-07 10:00:00","event":4}`),
		[]byte(`{"event":99999999999999999999}`),
		[]byte(`{"event":-9223372036854775808,"size":9223372036854775807}`),
		[]byte(`{"event":-9223372036854775809}`),
		[]byte(`{"size":9223372036854775808}`),
		[]byte(`{"event":-0,"fetched":0,"bytes":-1}`),
		[]byte(`{"elapsed_ms":1e999,"event":5}`),
		[]byte(`{"set_aside":1,"set_aside":2,"event":6} `),
		[]byte(`{"event":7,}`),
		[]byte(`{"event":7} x`),
		[]byte(`{"a":[1,2,],"event":8}`),
		[]byte(`{"a":"\q","event":8}`),
		[]byte(`{"a":-01,"event":9}`),
		[]byte(`{"ok":tru,"event":9}`),
		[]byte(`{}`),
		[]byte(`[]`),
		[]byte(`{"message":"\u00e9\ud83d\ude00","event":10}`),
	)
}

// scanAgrees checks one line: whatever scanLine accepts, encoding/json
// decodes without error to the same fields.
func scanAgrees(t *testing.T, raw []byte) {
	var fast, slow line
	if !scanLine(raw, &fast) {
		return
	}
	err := json.Unmarshal(raw, &slow)
	if err != nil {
		t.Fatalf("scanLine took %q, encoding/json: %v", raw, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q:\nscanLine     %+v\nencoding/json %+v", raw, fast, slow)
	}
}

// TestScanLineIsJSON: on zerolog's own lines and on awkward ones, what
// scanLine decodes is what encoding/json decodes, and it takes every
// ordinary zerolog line itself.
func TestScanLineIsJSON(t *testing.T) {
	lines := zerologLines(t)
	for _, raw := range lines {
		scanAgrees(t, raw)
	}
	for _, raw := range lines[:5] {
		var l line
		if !scanLine(raw, &l) {
			t.Errorf("a zerolog line left to encoding/json: %q", raw)
		}
	}
	for _, raw := range []string{`{"event":1,"Event":2}`, `{"event":1.5}`, `{"level":null}`, `{"event":7,}`, `{"a":"\q"}`, `{"a":-01}`} {
		var l line
		if scanLine([]byte(raw), &l) {
			t.Errorf("scanLine took %q", raw)
		}
	}
}

func FuzzScanLineIsJSON(f *testing.F) {
	for _, raw := range zerologLines(f) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) { scanAgrees(t, raw) })
}

// BenchmarkObserve is the tracker reading deliverd's Delivered line:
//
//	go test -run '^$' -bench Observe -benchmem ./status
func BenchmarkObserve(b *testing.B) {
	raw := zerologLines(b)[0]
	tr := NewTracker("deliverd", "test")
	b.ReportAllocs()
	for b.Loop() {
		tr.Observe(raw)
	}
}
