package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/spool"
)

// lockedBuffer takes the log lines of the delivery workers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// The delivered line gives the message's size (without envelope lines)
// and the time the delivery took, for the metrics endpoint.
func TestDeliveredLineCarriesSizeAndElapsed(t *testing.T) {
	q := newQueue(t, &scripted{})
	var log lockedBuffer
	q.Log = zerolog.New(&log)
	put(t, q, spool.Pickup, "ok@l")
	if err := q.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["event"] == 4001.0 {
			got = append(got, m)
		}
	}
	if len(got) != 1 || got[0]["size"] != float64(len(body)) {
		t.Fatalf("4001 lines %v, want one with size %d\n%s", got, len(body), log.b.String())
	}
	if ms, ok := got[0]["elapsed_ms"].(float64); !ok || ms <= 0 {
		t.Fatalf("4001 elapsed_ms %v", got[0]["elapsed_ms"])
	}
}
