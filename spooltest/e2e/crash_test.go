package e2e

import (
	"math/rand"
	"testing"
	"time"

	"example.org/popspool/spooltest/harness"
)

// seed returns $POPSPOOL_SEED or a fresh one; it is logged so a failure
// can be replayed.
func seed(t *testing.T) int64 { return harness.EnvInt(t, "POPSPOOL_SEED", time.Now().UnixNano()) }

// TestKill9MidFlow kills each daemon with SIGKILL, again and again, while
// a few hundred messages flow, restarts it, and checks that every message
// arrives exactly once, byte-identical, and that nothing is left behind.
func TestKill9MidFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	s := seed(t)
	t.Logf("seed %d (replay with POPSPOOL_SEED=%d)", s, s)
	rng := rand.New(rand.NewSource(s))
	f := newFlow(t)
	want, err := harness.Generate(f.Box, 300, s)
	if err != nil {
		t.Fatal(err)
	}
	startAll(t, f)
	kills := map[string]int{}
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		time.Sleep(time.Duration(20+rng.Intn(150)) * time.Millisecond)
		if f.Settled() && i >= 9 {
			break
		}
		d := harness.Daemons[i%3]
		if i >= 9 {
			d = harness.Daemons[rng.Intn(3)]
		}
		if err := f.Kill(d); err != nil {
			t.Fatal(err)
		}
		kills[d]++
		time.Sleep(time.Duration(rng.Intn(100)) * time.Millisecond)
		if err := f.Start(d); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("kills: %v", kills)
	for _, d := range harness.Daemons {
		if kills[d] == 0 {
			t.Fatalf("%s was never killed", d)
		}
	}
	waitDelivered(t, f, len(want), 90*time.Second)
	checkExactlyOnce(t, f, want)
	harness.WaitFor(5*time.Second, func() bool { return len(f.SpoolFiles()) == 0 })
	if n := f.SpoolFiles(); len(n) != 0 {
		t.Fatalf("left behind in the spool: %v", n)
	}
}
