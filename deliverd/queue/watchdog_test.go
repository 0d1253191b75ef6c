package queue

import (
	"context"
	"strings"
	"testing"
	"time"

	"example.org/popspool/deliverd/smtpc"
	"example.org/popspool/shared/liveness"
)

// stalledLoop polls the process's monitor for a stalled loop named name.
func stalledLoop(name string, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, s := range liveness.Default.Stalled() {
			if s.Loop == name {
				return true
			}
		}
	}
	return false
}

// TestHungSessionStallsTheDeliveryLoop: a server that never answers the
// final dot leaves the delivery loop busy without progress, which the
// supervisor sees (and stops the watchdog pings); a slow server that
// keeps talking does not (issue 11, item 4).
func TestHungSessionStallsTheDeliveryLoop(t *testing.T) {
	t.Run("slow but moving", func(t *testing.T) {
		f := newFake(t)
		f.Pause = 80 * time.Millisecond
		f.EHLO = []string{"250-fake.test\r\n", "250-PIPELINING\r\n", "250-8BITMIME\r\n", "250-ENHANCEDSTATUSCODES\r\n", "250 SIZE 10000000\r\n"}
		q := fakeQueue(t, f, smtpc.Options{})
		q.StallBudget = 200 * time.Millisecond
		putN(t, q, 1, "a@example.org")
		done := make(chan error, 1)
		go func() { done <- q.Run(context.Background(), true) }()
		if stalledLoop("deliverd delivery", 600*time.Millisecond) {
			t.Error("a session that keeps talking was taken for a hung one")
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		wantFolders(t, q, 0, 0, 0)
	})
	t.Run("never answers", func(t *testing.T) {
		f := newFake(t)
		f.Dot = func(int) string { return "hang" }
		q := fakeQueue(t, f, smtpc.Options{Timeouts: smtpc.Timeouts{FinalDot: 1500 * time.Millisecond}})
		q.StallBudget = 200 * time.Millisecond
		putN(t, q, 1, "a@example.org")
		done := make(chan error, 1)
		go func() { done <- q.Run(context.Background(), true) }()
		if !stalledLoop("deliverd delivery", time.Second) {
			t.Error("a session waiting past its budget for the final dot's reply was not seen as stalled")
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for _, s := range liveness.Default.Stalled() {
			if strings.HasPrefix(s.Loop, "deliverd") {
				t.Errorf("loop %q still watched after Run returned", s.Loop)
			}
		}
	})
}
