package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/spool"
)

// logLine is what the metrics endpoint reads of an outcome's line.
type logLine struct {
	Event     int      `json:"event"`
	Size      int64    `json:"size"`
	ElapsedMS *float64 `json:"elapsed_ms"`
}

func logLines(t *testing.T, log *bytes.Buffer) map[int][]logLine {
	t.Helper()
	out := map[int][]logLine{}
	for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var o logLine
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out[o.Event] = append(out[o.Event], o)
	}
	return out
}

// The routed line gives the message's size (without envelope lines) and
// the time routing took, for the metrics endpoint.
func TestRoutedLineCarriesSizeAndElapsed(t *testing.T) {
	w := setup(t, "office")
	var log bytes.Buffer
	w.Log = zerolog.New(&log)
	drop(t, w, spool.NewID()+".eml", msg)
	if err := w.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	got := logLines(t, &log)[3001]
	if len(got) != 1 || got[0].Size != int64(len(msg)) || got[0].ElapsedMS == nil || *got[0].ElapsedMS <= 0 {
		t.Fatalf("3001 lines %+v, want one with size %d and elapsed_ms > 0\n%s", got, len(msg), log.String())
	}
}

// A panic while routing is one 1018 line, the move to failed/: the
// metrics endpoint counts each line as one failed message.
func TestPanicIsOneLine(t *testing.T) {
	w := setup(t, "office")
	var log bytes.Buffer
	w.Log = zerolog.New(&log)
	w.Filter = nil // routing dereferences it
	drop(t, w, spool.NewID()+".eml", msg)
	if err := w.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if got := only(t, w, spool.Failed); !strings.HasPrefix(got, "X-Popspool-Failed: 1018 internal error") {
		t.Fatalf("failed/ holds %q", got)
	}
	got := logLines(t, &log)[1018]
	if len(got) != 1 || got[0].Size != int64(len(msg)) || got[0].ElapsedMS == nil {
		t.Fatalf("1018 lines %+v, want one with size %d and elapsed_ms\n%s", got, len(msg), log.String())
	}
}
