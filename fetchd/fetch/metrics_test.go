package fetch

import (
	"testing"

	"example.org/popspool/shared/event"
)

// Each fetched line gives the message's size and the time its download
// took, the poll's line the time of the whole session, for the metrics
// endpoint.
func TestFetchAndPollLinesCarryElapsed(t *testing.T) {
	r := newRig(t)
	if _, err := r.poll(t); err != nil {
		t.Fatal(err)
	}
	fetched := r.log.events(event.Fetched)
	if len(fetched) != len(r.want) {
		t.Fatalf("%d 2002 lines for %d messages", len(fetched), len(r.want))
	}
	for _, l := range append(fetched, r.log.events(event.FetchSession)...) {
		if ms, ok := l[event.Elapsed].(float64); !ok || ms <= 0 {
			t.Errorf("event %v without elapsed_ms: %v", l["event"], l)
		}
	}
	for _, l := range fetched {
		if size, _ := l["size"].(float64); size <= 0 {
			t.Errorf("2002 without size: %v", l)
		}
	}
	if n := len(r.log.events(event.FetchSession)); n != 1 {
		t.Errorf("%d 2001 lines for one poll", n)
	}
}
