package fetch

import (
	"strings"
	"testing"
	"time"

	"example.org/popspool/spooltest/pop3srv"
)

// A server that trickles its UIDL listing, each line well inside the
// time-out, does not hold the session: the listings have a budget of
// their own (issue 16.3). Before, the session lasted as long as the
// server liked.
func TestTricklingListingIsCut(t *testing.T) {
	r, p := newFakeRig(t, fakeMessage("a", "one"))
	p.hook = func(_ int, cmd string) (string, hookAction) {
		if cmd == "UIDL" {
			return "+OK\r\n", hookTrickle
		}
		return "", hookPass
	}
	r.f.listingBudget = 500 * time.Millisecond
	start := time.Now()
	_, err := r.poll(t)
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the session took %v", took)
	}
	if err == nil || !strings.Contains(r.log.String(), "the listings took longer than 500ms") {
		t.Fatalf("poll: %v; want the listing cut by its budget:\n%s", err, r.log)
	}
}

// A stop request ends a session that is receiving a message trickled
// without end within the grace period, and the cut is not counted against
// the message (issue 16.3). Before, the stop waited for the message.
func TestStopCutsSessionAfterGrace(t *testing.T) {
	r := brokenRig(t, pop3srv.BreakEndless)
	r.f.retrBudget = time.Minute // only the stop can end this RETR
	r.f.stopGrace = 300 * time.Millisecond
	stop := runFor(t, r.f)
	waitFor(t, 10*time.Second, "the endless RETR", func() bool { return r.srv.Stats().Retrs >= 2 })
	time.Sleep(500 * time.Millisecond) // m3, the endless one, comes next
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("stop took %v with a grace of 300ms", took)
	}
	if n := r.f.journals["office"].attempts[badUIDL]; n != 0 {
		t.Fatalf("the stop counted %d failed downloads against the message", n)
	}
}
