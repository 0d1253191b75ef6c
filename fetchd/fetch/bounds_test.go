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

// A TOP that never ends, for an oversize message's stub or for the header
// digest of a server without UIDL, is cut by its budget as a RETR is
// (issue 16.3). Before, each line inside the time-out kept it going.
func TestEndlessTopIsCut(t *testing.T) {
	for _, c := range []struct {
		name   string
		noUIDL bool
	}{{"oversize stub", false}, {"no UIDL", true}} {
		t.Run(c.name, func(t *testing.T) {
			r, p := newFakeRig(t, fakeMessage("a", "one"))
			if !c.noUIDL {
				r.cfg.Account[0].MaxSize, r.cfg.Account[0].Oversize = 10, "headers"
			}
			p.hook = func(_ int, cmd string) (string, hookAction) {
				switch {
				case cmd == "UIDL" && c.noUIDL:
					return "-ERR no UIDL here\r\n", hookReply
				case cmd == "TOP 1 0":
					return "+OK\r\n", hookFlood
				}
				return "", hookPass
			}
			r.f.retrBudget = 500 * time.Millisecond
			done := make(chan error, 1)
			go func() { _, err := r.poll(t); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(r.log.String(), "TOP 1 0 took longer than 500ms") {
					t.Fatalf("poll: %v; want the TOP cut by its budget:\n%s", err, r.log)
				}
			case <-time.After(10 * time.Second):
				r.f.Close()
				t.Fatal("the endless TOP held the session for 10 s")
			}
		})
	}
}
