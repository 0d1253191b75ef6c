package worker

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/spool/powercut"
)

// TestPowerCutDuplicates is the power-cut model of routing with the
// duplicate filter on: two copies of one message from two of alice's
// mailboxes and one other message. At every step of the recorded run it
// rebuilds each state a power cut could leave (the seen set's journal
// with the spool), runs recovery and a pass, and checks that no message
// is lost and that alice gets the shared message: never both copies
// dropped as duplicates of each other (a false drop), whatever part of
// the journal survived. Then a late third copy arrives: routing it again
// although alice has a copy (its record did not survive) is counted, not
// failed, since the filter fails open.
func TestPowerCutDuplicates(t *testing.T) {
	msgs := []string{copyFrom("one", "<m1@example.net>"), copyFrom("two", "<m1@example.net>"), copyFrom("one", "<m2@example.net>")}
	rec, ids, w := recordDups(t, msgs, nil)
	points, states, violations, missed := checkDupStates(t, rec, ids, msgs, w)
	t.Logf("crashstates: traces=1 points=%d states=%d violations=%d late_copy_routed=%d", points, states, violations, missed)
	if violations > 0 {
		t.Fatalf("%d crash states lost a message or dropped both copies", violations)
	}
}

// TestPowerCutDuplicatesCatchesMissingJournalSync proves the model sees
// the journal: without its fsync before the batch's handoff, more crash
// states forget a copy that was handed on, and the late copy is routed
// again.
func TestPowerCutDuplicatesCatchesMissingJournalSync(t *testing.T) {
	msgs := []string{copyFrom("one", "<m1@example.net>"), copyFrom("two", "<m1@example.net>"), copyFrom("one", "<m2@example.net>")}
	rec, ids, w := recordDups(t, msgs, nil)
	_, _, _, base := checkDupStates(t, rec, ids, msgs, w)
	rec, ids, w = recordDups(t, msgs, func(r *powercut.Recorder) spool.FS { return noJournalSync{r} })
	_, _, _, missed := checkDupStates(t, rec, ids, msgs, w)
	t.Logf("late copy routed again: %d states with the journal's fsync, %d without", base, missed)
	if missed <= base {
		t.Errorf("without the journal's fsync %d states routed the late copy again, with it %d: the model is blind", missed, base)
	}
}

// noJournalSync drops the fsyncs of the seen set's journal alone.
type noJournalSync struct{ *powercut.Recorder }

func (n noJournalSync) SyncFile(f *os.File) error {
	if strings.HasSuffix(f.Name(), dupsFile) {
		return nil
	}
	return n.Recorder.SyncFile(f)
}

func recordDups(t *testing.T, msgs []string, wrap func(*powercut.Recorder) spool.FS) (*powercut.Recorder, []string, *Worker) {
	t.Helper()
	w, _ := setupDups(t, true)
	var ids []string
	for _, m := range msgs {
		ids = append(ids, dropIn(t, w, m))
	}
	rec, err := powercut.NewRecorder(w.S.Root)
	if err != nil {
		t.Fatal(err)
	}
	var fs spool.FS = rec
	if wrap != nil {
		fs = wrap(rec)
	}
	w.S.SetFS(fs)
	run(t, w)
	return rec, ids, w
}

func checkDupStates(t *testing.T, rec *powercut.Recorder, ids, msgs []string, w *Worker) (points, states, violations, missed int) {
	rng := rand.New(rand.NewSource(1))
	for k := 0; k <= len(rec.Ops); k++ {
		points++
		for _, st := range rec.States(k, rng) {
			states++
			root := filepath.Join(t.TempDir(), "s")
			if err := rec.Materialize(st, root); err != nil {
				t.Fatal(err)
			}
			bad, b := recoverDups(t, root, w, ids, msgs)
			if bad != "" {
				violations++
				if violations <= 3 {
					t.Logf("after %d calls (last: %+v): %s", k, last(rec, k), bad)
				}
			}
			if b {
				missed++
			}
		}
	}
	return points, states, violations, missed
}

// recoverDups runs recovery and a pass on a crash state, then routes a
// late copy of the shared message; bad says what is wrong, missed whether
// the late copy went to pickup/ although alice had one already.
func recoverDups(t *testing.T, root string, w0 *Worker, ids, msgs []string) (bad string, missed bool) {
	s, err := spool.Open(root, "rewrited", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := New(s, w0.Cfg, zerolog.Nop())
	if err := w.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	run(t, w)
	routed := make([]int, len(ids))
	for i, id := range ids {
		p, d := intact(root, spool.Pickup, id, msgs[i]), intact(root, spool.Duplicates, id, msgs[i])
		if p+d == 0 {
			return fmt.Sprintf("message %d (%s) lost", i, id), false
		}
		routed[i] = p
	}
	switch {
	case routed[0] == 0 && routed[1] == 0:
		return "both copies of the shared message dropped as duplicates", false
	case routed[2] == 0:
		return "the other message was dropped as a duplicate", false
	}
	if left, _ := os.ReadDir(filepath.Join(root, "tmp", "rewrited")); len(left) > 1 {
		return fmt.Sprintf("tmp/rewrited not empty: %d entries", len(left)), false
	}
	late := dropIn(t, w, copyFrom("two", "<m1@example.net>"))
	run(t, w)
	return "", intact(root, spool.Pickup, late, copyFrom("two", "<m1@example.net>")) > 0
}

// intact counts the whole copies of message m (id) in folder, under the
// envelope rewrited writes.
func intact(root, folder, id, m string) int {
	n := 0
	entries, _ := os.ReadDir(filepath.Join(root, folder))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), id) {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(root, folder, e.Name()))
		if bytes.HasSuffix(b, []byte(m)) && bytes.HasPrefix(b, []byte("X-Sender: ")) {
			n++
		}
	}
	return n
}
