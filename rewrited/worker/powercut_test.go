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
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/spool/powercut"
)

// TestPowerCut records rewrited routing three messages (one broken), then
// rebuilds every state a power cut could leave at every step, runs
// rewrited's recovery and a pass over incoming/ on each, and checks that
// no message is lost or damaged. Copies with the same id are counted, not
// failed: between the fsync of tmp/ and that of incoming/ after a claim, a
// file system that does not journal renames may show the file in both
// folders; the copy keeps its id and deliverd's ledger delivers it once.
func TestPowerCut(t *testing.T) {
	msgs := []string{msg, strings.Replace(msg, "Subject: hi", "Subject: second", 1), "garbage without header\r\n"}
	rec, ids := recordRewrited(t, msgs, nil)
	points, states, violations, dups := checkStates(t, rec, ids, msgs)
	t.Logf("crashstates: traces=1 points=%d states=%d violations=%d same_id_copies=%d", points, states, violations, dups)
	if violations > 0 {
		t.Fatalf("%d crash states lost or damaged a message", violations)
	}
}

// TestPowerCutCatchesMissingFsyncs proves the model has teeth: without
// the file fsyncs some crash state loses a message; without the folder
// fsyncs a message is left in two places.
func TestPowerCutCatchesMissingFsyncs(t *testing.T) {
	msgs := []string{msg}
	rec, ids := recordRewrited(t, msgs, func(r *powercut.Recorder) spool.FS { return noFileSync{r} })
	if _, _, violations, _ := checkStates(t, rec, ids, msgs); violations == 0 {
		t.Error("without file fsyncs no crash state lost a message: the model is blind")
	}
	rec, ids = recordRewrited(t, msgs, nil)
	_, _, _, base := checkStates(t, rec, ids, msgs)
	rec, ids = recordRewrited(t, msgs, func(r *powercut.Recorder) spool.FS { return noDirSync{r} })
	if _, _, _, dups := checkStates(t, rec, ids, msgs); dups <= base {
		t.Errorf("without folder fsyncs %d states left a copy, with them %d: the model is blind", dups, base)
	}
}

// TestPowerCutSpares: five messages (one broken) in batches of two, so
// that the second and third batches write their routed versions over the
// first ones' claimed originals (spare inodes, spool.Retire). No crash
// state loses or damages a message; without the data syncs some does.
func TestPowerCutSpares(t *testing.T) {
	msgs := []string{msg, strings.Replace(msg, "Subject: hi", "Subject: second", 1), "garbage without header\r\n",
		strings.Replace(msg, "Subject: hi", "Subject: a longer subject, so that a spare grows", 1), strings.Replace(msg, "hi", "x", -1)}
	rec, ids := recordRewritedBatch(t, msgs, nil, 2)
	reused := 0
	for _, op := range rec.Ops {
		if op.Kind == "reuse" {
			reused++
		}
	}
	if reused < 2 {
		t.Fatalf("%d parts written over spares, want at least 2", reused)
	}
	points, states, violations, dups := checkStates(t, rec, ids, msgs)
	t.Logf("crashstates: traces=1 points=%d states=%d violations=%d same_id_copies=%d reused=%d", points, states, violations, dups, reused)
	if violations > 0 {
		t.Fatalf("%d crash states lost or damaged a message", violations)
	}
	rec, ids = recordRewritedBatch(t, msgs, func(r *powercut.Recorder) spool.FS { return noSpareSync{r} }, 2)
	if _, _, violations, _ := checkStates(t, rec, ids, msgs); violations == 0 {
		t.Error("without the data syncs of the parts written over spares no crash state lost or damaged a message: the model is blind")
	}
}

// noSpareSync drops the data sync of the parts written over spares only.
type noSpareSync struct{ *powercut.Recorder }

func (n noSpareSync) SyncFile(f *os.File) error {
	if strings.HasSuffix(f.Name(), ".spare") {
		return nil
	}
	return n.Recorder.SyncFile(f)
}

func (n noSpareSync) SyncGroup(anchor *os.File, paths []string) error {
	var keep []string
	for _, p := range paths {
		if !strings.HasSuffix(p, ".spare") {
			keep = append(keep, p)
		}
	}
	return n.Recorder.SyncGroup(anchor, keep)
}

type noDirSync struct{ *powercut.Recorder }

func (noDirSync) SyncDir(string) error { return nil }

type noFileSync struct{ *powercut.Recorder }

func (noFileSync) SyncFile(*os.File) error { return nil }

// SyncGroup drops the group's data sync, which stands for the fsync of
// each of its files.
func (noFileSync) SyncGroup(*os.File, []string) error { return nil }

func recordRewrited(t *testing.T, msgs []string, wrap func(*powercut.Recorder) spool.FS) (*powercut.Recorder, []string) {
	t.Helper()
	return recordRewritedBatch(t, msgs, wrap, 0)
}

// recordRewritedBatch is recordRewrited with batches of batch files (0:
// the default).
func recordRewritedBatch(t *testing.T, msgs []string, wrap func(*powercut.Recorder) spool.FS, batch int) (*powercut.Recorder, []string) {
	t.Helper()
	w := setup(t, "office")
	w.Batch = batch
	var ids []string
	for _, m := range msgs {
		id := spool.NewID()
		ids = append(ids, id)
		drop(t, w, id+".eml", m)
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
	if err := w.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	return rec, ids
}

func checkStates(t *testing.T, rec *powercut.Recorder, ids, msgs []string) (points, states, violations, dups int) {
	rng := rand.New(rand.NewSource(1))
	cfg := &config.Config{Rescan: config.Duration(time.Second), Account: []config.Account{{Name: "office",
		Routing: config.Routing{DeliverTo: []string{"office@contoso.local"}}}}, Filter: config.Filter{MaxHops: 3}}
	for k := 0; k <= len(rec.Ops); k++ {
		points++
		for _, st := range rec.States(k, rng) {
			states++
			root := filepath.Join(t.TempDir(), "s")
			if err := rec.Materialize(st, root); err != nil {
				t.Fatal(err)
			}
			lost, d := recoverAndCount(t, root, cfg, ids, msgs)
			if lost != "" {
				violations++
				if violations <= 3 {
					t.Logf("after %d calls (last: %+v): %s", k, last(rec, k), lost)
				}
			}
			dups += d
		}
	}
	return points, states, violations, dups
}

func last(rec *powercut.Recorder, k int) powercut.Op {
	if k == 0 {
		return powercut.Op{}
	}
	op := rec.Ops[k-1]
	op.Data = nil
	return op
}

// recoverAndCount runs recovery and one pass on a crash state and says
// which message, if any, is missing or damaged.
func recoverAndCount(t *testing.T, root string, cfg *config.Config, ids, msgs []string) (lost string, dups int) {
	s, err := spool.Open(root, "rewrited", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := New(s, cfg, zerolog.Nop())
	if err := w.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		n := copies(root, id, msgs[i])
		if n == 0 {
			return fmt.Sprintf("message %d (%s) lost", i, id), dups
		}
		if all := named(root, id); all != n {
			return fmt.Sprintf("message %d (%s): %d files, %d of them intact", i, id, all, n), dups
		}
		dups += n - 1
	}
	if left, _ := os.ReadDir(filepath.Join(root, "tmp", "rewrited")); len(left) > 1 {
		return fmt.Sprintf("tmp/rewrited not empty: %d entries", len(left)), dups
	}
	return "", dups
}

// named counts the files of id in pickup/ and failed/, intact or not.
func named(root, id string) int {
	n := 0
	for _, folder := range []string{"pickup", "failed"} {
		m, _ := filepath.Glob(filepath.Join(root, folder, id+"*"))
		n += len(m)
	}
	return n
}

// copies counts the intact copies of message m (id) in pickup/ and failed/.
func copies(root, id, m string) int {
	n := 0
	for _, folder := range []string{"pickup", "failed"} {
		entries, _ := os.ReadDir(filepath.Join(root, folder))
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), id) {
				continue
			}
			b, _ := os.ReadFile(filepath.Join(root, folder, e.Name()))
			head := "X-Sender: "
			if folder == "failed" {
				head = "X-Popspool-Failed: "
			}
			// Intact: the message whole, under the lines rewrited adds.
			if bytes.HasSuffix(b, []byte(m)) && bytes.HasPrefix(b, []byte(head)) {
				n++
			}
		}
	}
	return n
}
