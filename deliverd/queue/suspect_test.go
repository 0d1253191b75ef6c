package queue

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/suspect"
)

// watched wraps scripted: it panics for a recipient and records the
// order of the jobs and how many were in flight at once.
type watched struct {
	scripted
	panicFor string
	mu       sync.Mutex
	inFlight int
	order    []string
	overlap  map[string]int // job id -> other jobs in flight when it started
}

func (w *watched) Send(ctx context.Context, j Job) ([]Outcome, error) {
	w.mu.Lock()
	if w.overlap == nil {
		w.overlap = map[string]int{}
	}
	w.overlap[j.ID] = w.inFlight
	w.inFlight++
	w.order = append(w.order, j.ID)
	w.mu.Unlock()
	defer func() { w.mu.Lock(); w.inFlight--; w.mu.Unlock() }()
	if slices.Contains(j.Rcpts, w.panicFor) {
		panic("scripted fault for " + w.panicFor)
	}
	return w.scripted.Send(ctx, j)
}

// leftover leaves a file in tmp/deliverd as a death in mid-delivery would.
func leftover(t *testing.T, q *Queue, rcpt string) string {
	t.Helper()
	id := put(t, q, spool.Pickup, rcpt)
	if err := os.Rename(filepath.Join(q.S.Dir(spool.Pickup), id+".eml"), filepath.Join(q.S.TmpDir(), id+".eml")); err != nil {
		t.Fatal(err)
	}
	return id
}

// A panic while delivering one message is the process's own evidence: that
// file goes to badmail/ with the panic as its reason and a DSN, and the
// messages on both sides of it are delivered (issue 11.3). Before, the
// panic killed deliverd, and the file came back first at every start.
func TestPanicSetsTheFileAsideOthersFlow(t *testing.T) {
	tg := &watched{panicFor: "boom@l"}
	q := newQueue(t, tg)
	var good []string
	for i := range 6 {
		if i == 3 {
			put(t, q, spool.Pickup, "boom@l")
		}
		good = append(good, put(t, q, spool.Pickup, "alice@l"))
	}
	if err := q.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	for _, id := range good {
		if tg.ids[id] != 1 {
			t.Errorf("%s delivered %d times", id, tg.ids[id])
		}
	}
	bad, _ := os.ReadDir(q.S.Dir(spool.Badmail))
	if len(bad) != 1 {
		t.Fatalf("badmail/ holds %d files, want the one that panicked", len(bad))
	}
	env, _ := read(t, q, spool.Badmail, strings.TrimSuffix(bad[0].Name(), ".eml"))
	if !strings.Contains(env.LastError, "internal error while delivering: scripted fault for boom@l") {
		t.Errorf("reason %q", env.LastError)
	}
	if d := tg.dsns(t); len(d) != 1 || !strings.Contains(deliveryStatus(t, d[0]), "5.3.0") {
		t.Errorf("DSNs: %d, want one with 5.3.0", len(d))
	}
}

// The files in hand at a death are delivered first, each with no other
// delivery in flight, and leave no count behind when they go through.
func TestSuspectsDeliveredAloneFirst(t *testing.T) {
	tg := &watched{}
	q := newQueue(t, tg)
	for range 8 {
		put(t, q, spool.Pickup, "alice@l")
	}
	s1, s2 := leftover(t, q, "bob@l"), leftover(t, q, "carol@l")
	if err := q.Recover(); err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if len(tg.order) != 10 || !slices.Contains(tg.order[:2], s1) || !slices.Contains(tg.order[:2], s2) {
		t.Fatalf("order %v: want %s and %s first", tg.order, s1, s2)
	}
	for _, id := range []string{s1, s2} {
		if tg.overlap[id] != 0 {
			t.Errorf("suspect %s was delivered beside %d others", id, tg.overlap[id])
		}
	}
	log := zerolog.Nop()
	q.Close()
	b, err := suspect.Open(filepath.Join(q.S.Dir(spool.State), "deliverd.suspects"), &log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if s := b.Suspects(); len(s) != 0 {
		t.Errorf("counts left for files delivered fine: %v", s)
	}
}

// The third death in a row with the file alone in hand sets it aside in
// badmail/ with a DSN; the one before is still delivered.
func TestThirdDeathAloneSetsAside(t *testing.T) {
	for deaths, setAside := range map[int]bool{suspect.Limit - 1: false, suspect.Limit: true} {
		tg := &watched{}
		q := newQueue(t, tg)
		id := leftover(t, q, "alice@l")
		log := zerolog.Nop()
		for range deaths {
			b, err := suspect.Open(filepath.Join(q.S.Dir(spool.State), "deliverd.suspects"), &log)
			if err != nil {
				t.Fatal(err)
			}
			b.Alone(id)
			b.Close()
		}
		if err := q.Recover(); err != nil {
			t.Fatal(err)
		}
		if err := q.Run(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		q.Close()
		_, err := os.Stat(filepath.Join(q.S.Dir(spool.Badmail), id+".eml"))
		if got := err == nil; got != setAside {
			t.Fatalf("%d deaths: in badmail/ %v, want %v", deaths, got, setAside)
		}
		if !setAside {
			if tg.ids[id] != 1 {
				t.Fatalf("%d deaths: delivered %d times", deaths, tg.ids[id])
			}
			continue
		}
		env, _ := read(t, q, spool.Badmail, id)
		if !strings.HasPrefix(env.LastError, "deliverd died 3 times in a row while handling this file alone (") {
			t.Errorf("reason %q", env.LastError)
		}
		if d := tg.dsns(t); len(d) != 1 {
			t.Errorf("%d DSNs, want 1", len(d))
		}
	}
}
