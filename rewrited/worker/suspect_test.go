package worker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/rewrited/filter"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/suspect"
)

// deathsAlone leaves the book as n starts of rewrited would that each died
// while routing id alone.
func deathsAlone(t *testing.T, w *Worker, id string, n int) {
	t.Helper()
	path := filepath.Join(w.S.Dir(spool.State), "rewrited.suspects")
	log := zerolog.Nop()
	for range n {
		b, err := suspect.Open(path, &log)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Alone(id); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
}

func claimedLeftover(t *testing.T, w *Worker) string {
	t.Helper()
	id := spool.NewID()
	if err := os.WriteFile(filepath.Join(w.S.TmpDir(), id+".eml"), []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	return id
}

// Two deaths with a file alone in hand are not evidence enough: it is
// routed, and the count against it is dropped (the old rule quarantined
// it: issue 11.2).
func TestTwoDeathsAloneDoNotQuarantine(t *testing.T) {
	w := setup(t, "office")
	id := claimedLeftover(t, w)
	deathsAlone(t, w, id, suspect.Limit-1)
	if err := w.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := only(t, w, spool.Pickup); !strings.HasSuffix(got, msg) {
		t.Fatalf("pickup/ holds %q", got)
	}
	log := zerolog.Nop()
	b, err := suspect.Open(filepath.Join(w.S.Dir(spool.State), "rewrited.suspects"), &log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if d := b.Deaths(id); len(d) != 0 {
		t.Fatalf("deaths against a file routed fine: %v", d)
	}
}

// The third death in a row, alone, sets the file aside with the count and
// the times; the other files in hand are routed.
func TestThirdDeathAloneQuarantines(t *testing.T) {
	w := setup(t, "office")
	poison := claimedLeftover(t, w)
	others := []string{claimedLeftover(t, w), claimedLeftover(t, w)}
	deathsAlone(t, w, poison, suspect.Limit)
	if err := w.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := only(t, w, spool.Failed)
	if !strings.HasPrefix(got, "X-Popspool-Failed: 3006 rewrited died 3 times in a row while handling this file alone (") || !strings.HasSuffix(got, msg) {
		t.Fatalf("failed/ holds %q", got)
	}
	if !strings.Contains(got, time.Now().UTC().Format("2006-01-02T")) {
		t.Errorf("reason lacks the times: %q", got)
	}
	for _, id := range others {
		if _, err := os.Stat(filepath.Join(w.S.Dir(spool.Pickup), id+".eml")); err != nil {
			t.Errorf("%s not routed: %v", id, err)
		}
	}
}

// A routing step past its deadline is seen by the process itself: the
// file goes to failed/ at once (3016) and the next file is routed.
func TestRoutingPastDeadlineQuarantinesAtOnce(t *testing.T) {
	w := setup(t, "office")
	w.Filter = filter.New(config.Filter{MaxHops: 3, Command: []string{"sh", "-c", "grep -q STALL && exec sleep 10; exit 0"}, Timeout: config.Duration(time.Minute)})
	w.RouteDeadline = 300 * time.Millisecond
	bad := spool.NewID()
	drop(t, w, bad+".eml", strings.Replace(msg, "body", "STALL", 1))
	good := spool.NewID()
	drop(t, w, good+".eml", msg)
	start := time.Now()
	if err := w.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v: the deadline did not cut the stalled file", took)
	}
	got := only(t, w, spool.Failed)
	if !strings.HasPrefix(got, "X-Popspool-Failed: 3016 routing did not finish within 300ms") {
		t.Fatalf("failed/ holds %q", got)
	}
	if _, err := os.Stat(filepath.Join(w.S.Dir(spool.Pickup), good+".eml")); err != nil {
		t.Fatalf("the good file behind it was not routed: %v", err)
	}
}

// The original of a file whose plan was given up on may still be read by
// the late plan (here a filter fed from it), so it is removed, never kept
// as a spare inode that the next part would be written over; an original
// whose plan finished is kept.
func TestLatePlanOriginalIsNoSpare(t *testing.T) {
	w := setup(t, "office")
	w.Filter = filter.New(config.Filter{MaxHops: 3, Command: []string{"sh", "-c", "grep -q STALL && exec sleep 10; exit 0"}, Timeout: config.Duration(time.Minute)})
	w.RouteDeadline = 300 * time.Millisecond
	bad, good := spool.NewID(), spool.NewID()
	drop(t, w, bad+".eml", strings.Replace(msg, "body", "STALL", 1))
	drop(t, w, good+".eml", msg)
	for i, c := range []struct {
		id     string
		spares int
	}{{bad, 0}, {good, 1}} {
		if err := w.handleBatch(context.Background(), []string{c.id + ".eml"}); err != nil {
			t.Fatal(err)
		}
		if got := w.S.Spares(); got != c.spares {
			t.Errorf("after file %d: %d spares, want %d", i, got, c.spares)
		}
	}
	w.S.DropSpares()
}
