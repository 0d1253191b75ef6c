package worker

import (
	"context"
	"testing"
	"time"

	"example.org/popspool/rewrited/filter"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/liveness"
	"example.org/popspool/shared/spool"
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

// TestHungFilterStallsTheRoutingLoop: a filter that does not return keeps
// the routing loop busy without progress, which the supervisor sees (and
// stops the watchdog pings); files routed one after the other do not
// (issue 11, item 4).
func TestHungFilterStallsTheRoutingLoop(t *testing.T) {
	for _, c := range []struct {
		name  string
		cmd   string
		files int
		stall bool
	}{
		{"quick filter, many files", "cat >/dev/null; sleep 0.05", 12, false}, // 12 x 50 ms: longer than the budget in all
		{"hung filter", "cat >/dev/null; sleep 1.5", 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := setup(t, "office")
			w.Filter = filter.New(config.Filter{MaxHops: 3, Command: []string{"sh", "-c", c.cmd}, Timeout: config.Duration(5 * time.Second)})
			w.StallBudget = 300 * time.Millisecond
			for range c.files {
				drop(t, w, spool.NewID()+".eml", msg)
			}
			done := make(chan error, 1)
			go func() { done <- w.Run(context.Background(), true) }()
			if got := stalledLoop("rewrited routing", 900*time.Millisecond); got != c.stall {
				t.Errorf("stalled %v, want %v", got, c.stall)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
