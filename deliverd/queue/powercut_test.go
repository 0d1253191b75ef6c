package queue

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"example.org/popspool/deliverd/ledger"
	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/spool/powercut"
)

// accepting is a target that takes every message and notes it: as a mark
// in the power-cut trace while recording (the target's acceptance is what
// no crash can undo), and in a count when replaying.
type accepting struct {
	rec   *powercut.Recorder
	mu    sync.Mutex
	count map[string]int
}

func (a *accepting) Send(_ context.Context, j Job) ([]Outcome, error) {
	if a.rec != nil {
		a.rec.Mark(j.ID)
	} else {
		a.mu.Lock()
		a.count[j.ID]++
		a.mu.Unlock()
	}
	out := make([]Outcome, 0, len(j.Rcpts))
	for _, r := range j.Rcpts {
		out = append(out, Outcome{Rcpt: r, OK: true, Code: 250, Text: "250 ok"})
	}
	return out, nil
}

// acceptingBatch is accepting as a Batcher: the queue hands it whole
// claimed groups, whose D records it writes together (settleGroup).
type acceptingBatch struct{ *accepting }

func (a acceptingBatch) SendBatch(ctx context.Context, jobs []Job) [][]Outcome {
	out := make([][]Outcome, len(jobs))
	for i, j := range jobs {
		out[i], _ = a.Send(ctx, j)
	}
	return out
}

func (a *accepting) Idle()        {}
func (a *accepting) Close() error { return nil }

// TestPowerCut records deliverd delivering three messages in two claimed
// groups (claim with its folder fsyncs, one fsync for the group's S
// records, for each message the target's acceptance, its D written but
// not fsynced and its file unlinked without a folder fsync; the first
// group's D records made durable by the second group's S fsync, the
// last by the Sync before deliverd waits), rebuilds every state a power
// cut could leave at every step, and runs deliverd's recovery and a pass
// on each. Every message must reach the target at least once; a second
// time only as an unknown outcome the ledger counted (W); and the spool
// must end empty.
func TestPowerCut(t *testing.T) {
	rec, ids := recordDeliver(t)
	checkTrace(t, rec)
	powerCut(t, rec, ids)
}

// checkTrace asserts the protocol TestPowerCut claims to model: each
// ledger write holds a claimed group's S records or one D, three ledger
// fsyncs in all (one per group, the first group's D records durable by
// the second's, and the Sync at the end), and no fsync of tmp/deliverd
// after the last removal.
func checkTrace(t *testing.T, rec *powercut.Recorder) {
	checkTraceWrites(t, rec, []string{"SS", "D", "D", "S", "D"})
}

// TestPowerCutBatch is TestPowerCut for a Batcher target: the first
// group's two D records are written together, before either file is
// removed, and then made durable by the second group's S fsync.
func TestPowerCutBatch(t *testing.T) {
	rec, ids := recordDeliverWith(t, nil, 0, true)
	checkTraceWrites(t, rec, []string{"SS", "DD", "S", "D"})
	powerCut(t, rec, ids)
}

// TestPowerCutBatchCatchesMissingLedgerSync proves the model sees the
// group's D records: without the ledger's fsyncs a message reaches the
// target twice uncounted.
func TestPowerCutBatchCatchesMissingLedgerSync(t *testing.T) {
	rec, ids := recordDeliverWith(t, func(r *powercut.Recorder) spool.FS { return noLedgerSync{r} }, 0, true)
	if firstBroken(t, rec, ids) == "" {
		t.Fatal("without the ledger's fsyncs no crash state broke the promise: the model is blind")
	}
}

// checkTraceWrites is checkTrace with the kinds of records each ledger
// write must hold.
func checkTraceWrites(t *testing.T, rec *powercut.Recorder, want []string) {
	t.Helper()
	var writes []string
	syncs, removed, lastRemove, lastTmpSync := 0, 0, -1, -1
	for i, op := range rec.Ops {
		switch {
		case op.Kind == "write" && strings.HasSuffix(op.Path, "/deliverd.ledger"):
			writes = append(writes, recordKinds(op.Data))
		case op.Kind == "sync" && strings.HasSuffix(op.Path, "/deliverd.ledger"):
			syncs++
		case op.Kind == "remove" && strings.HasPrefix(op.Path, "tmp/deliverd/"):
			removed, lastRemove = removed+1, i
		case op.Kind == "syncdir" && op.Path == "tmp/deliverd":
			lastTmpSync = i
		}
	}
	if fmt.Sprint(writes) != fmt.Sprint(want) || syncs != 3 || removed != 3 || lastTmpSync > lastRemove {
		t.Fatalf("ledger writes %v (want %v), ledger fsyncs %d (want 3), removals %d (want 3), tmp/deliverd fsynced after the last: %v",
			writes, want, syncs, removed, lastTmpSync > lastRemove)
	}
}

// recordKinds is the kinds of the journal records in a write, in order.
func recordKinds(data []byte) string {
	var kinds string
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			kinds += f[1]
		}
	}
	return kinds
}

// TestPowerCutCompaction is TestPowerCut with the ledger compacted while
// running, after every second message (issue 16.5): a power cut in the
// middle of a compaction (the new ledger written, fsynced, renamed over
// the old, the folder fsynced) loses no record that matters.
func TestPowerCutCompaction(t *testing.T) {
	rec, ids := recordDeliverFS(t, nil, 4)
	renames := 0
	for _, op := range rec.Ops {
		if op.Kind == "rename" && strings.HasSuffix(op.To, "/deliverd.ledger") {
			renames++
		}
	}
	if renames == 0 {
		t.Fatal("the ledger was not compacted while running")
	}
	powerCut(t, rec, ids)
}

// powerCut replays every crash state of the trace.
func powerCut(t *testing.T, rec *powercut.Recorder, ids []string) {
	t.Helper()
	rng := rand.New(rand.NewSource(1))
	points, states, violations, resent := 0, 0, 0, 0
	for k := 0; k <= len(rec.Ops); k++ {
		points++
		before := map[string]int{}
		for _, m := range rec.Marks(k) {
			before[m]++
		}
		for _, st := range rec.States(k, rng) {
			states++
			root := filepath.Join(t.TempDir(), "s")
			if err := rec.Materialize(st, root); err != nil {
				t.Fatal(err)
			}
			bad, n := replayDeliver(t, root, ids, before)
			resent += n
			if bad != "" {
				violations++
				if violations <= 3 {
					t.Logf("after %d calls: %s", k, bad)
				}
			}
		}
	}
	t.Logf("crashstates: traces=1 (deliverd) points=%d states=%d violations=%d counted_resends=%d", points, states, violations, resent)
	if violations > 0 {
		t.Fatalf("%d crash states broke the promise", violations)
	}
}

// TestPowerCutCatchesMissingLedgerSync proves the model sees the ledger:
// without its fsyncs a message reaches the target twice uncounted.
func TestPowerCutCatchesMissingLedgerSync(t *testing.T) {
	rec, ids := recordDeliverFS(t, func(r *powercut.Recorder) spool.FS { return noLedgerSync{r} }, 0)
	if firstBroken(t, rec, ids) == "" {
		t.Fatal("without the ledger's fsyncs no crash state broke the promise: the model is blind")
	}
}

// TestPowerCutCatchesUnsyncedCompaction proves the model sees the
// compaction: renaming the new ledger into place before it is fsynced
// loses the records a crash may then find missing.
func TestPowerCutCatchesUnsyncedCompaction(t *testing.T) {
	rec, ids := recordDeliverFS(t, func(r *powercut.Recorder) spool.FS { return noCompactSync{r} }, 4)
	if firstBroken(t, rec, ids) == "" {
		t.Fatal("with an unsynced compaction no crash state broke the promise: the model is blind")
	}
}

// TestPowerCutCatchesUnsyncedStart proves the model sees the claim's S
// fsync: without it (every ledger fsync after a write holding S records
// dropped) a message accepted before a cut comes back without its S and
// is sent again uncounted.
func TestPowerCutCatchesUnsyncedStart(t *testing.T) {
	rec, ids := recordDeliverFS(t, func(r *powercut.Recorder) spool.FS { return &noStartSync{Recorder: r} }, 0)
	bad := firstBroken(t, rec, ids)
	if bad == "" {
		t.Fatal("without the S records' fsync no crash state broke the promise: the model is blind")
	}
	t.Logf("found: %s", bad)
}

// firstBroken replays the crash states of rec's trace in order and
// returns the first broken promise, or "" if every state kept it.
func firstBroken(t *testing.T, rec *powercut.Recorder, ids []string) string {
	t.Helper()
	rng := rand.New(rand.NewSource(1))
	for k := 0; k <= len(rec.Ops); k++ {
		before := map[string]int{}
		for _, m := range rec.Marks(k) {
			before[m]++
		}
		for _, st := range rec.States(k, rng) {
			root := filepath.Join(t.TempDir(), "s")
			rec.Materialize(st, root)
			if bad, _ := replayDeliver(t, root, ids, before); bad != "" {
				return bad
			}
		}
	}
	return ""
}

// noStartSync drops the ledger fsync that follows a write of S records.
type noStartSync struct {
	*powercut.Recorder
	lastHadS bool
}

func (n *noStartSync) Write(f *os.File, b []byte) (int, error) {
	if strings.HasSuffix(f.Name(), ".ledger") {
		n.lastHadS = strings.Contains(recordKinds(b), "S")
	}
	return n.Recorder.Write(f, b)
}

func (n *noStartSync) SyncFile(f *os.File) error {
	if strings.HasSuffix(f.Name(), ".ledger") && n.lastHadS {
		return nil
	}
	return n.Recorder.SyncFile(f)
}

type noCompactSync struct{ *powercut.Recorder }

func (n noCompactSync) SyncFile(f *os.File) error {
	if strings.HasSuffix(f.Name(), ".ledger.new") {
		return nil
	}
	return n.Recorder.SyncFile(f)
}

type noLedgerSync struct{ *powercut.Recorder }

func (n noLedgerSync) SyncFile(f *os.File) error {
	if strings.HasSuffix(f.Name(), ".ledger") {
		return nil
	}
	return n.Recorder.SyncFile(f)
}

func recordDeliver(t *testing.T) (*powercut.Recorder, []string) {
	return recordDeliverFS(t, nil, 0)
}

// recordDeliverFS records the trace through wrap's FS, with the ledger's
// CompactMin set to compactMin (0: the default).
func recordDeliverFS(t *testing.T, wrap func(*powercut.Recorder) spool.FS, compactMin int) (*powercut.Recorder, []string) {
	t.Helper()
	return recordDeliverWith(t, wrap, compactMin, false)
}

// recordDeliverWith is recordDeliverFS, with a Batcher target if batch.
func recordDeliverWith(t *testing.T, wrap func(*powercut.Recorder) spool.FS, compactMin int, batch bool) (*powercut.Recorder, []string) {
	t.Helper()
	q := newQueue(t, nil)
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, put(t, q, spool.Pickup, fmt.Sprintf("r%d@l", i)))
	}
	q.Ledger.Close()
	rec, err := powercut.NewRecorder(q.S.Root)
	if err != nil {
		t.Fatal(err)
	}
	var fs spool.FS = rec
	if wrap != nil {
		fs = wrap(rec)
	}
	q.S.SetFS(fs)
	l, err := ledger.OpenFS(filepath.Join(q.S.Dir(spool.State), "deliverd.ledger"), fs)
	if err != nil {
		t.Fatal(err)
	}
	l.CompactMin = compactMin
	q.Ledger, q.Target = l, &accepting{rec: rec}
	if batch {
		q.Target = acceptingBatch{&accepting{rec: rec}}
	}
	q.Cfg.Deliver.Connections = 1
	q.group = 2 // two claimed groups: the first one's D records ride on the second's S fsync
	if err := q.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if len(rec.Marks(len(rec.Ops))) != 3 {
		t.Fatalf("target took %d messages, want 3", len(rec.Marks(len(rec.Ops))))
	}
	return rec, ids
}

// replayDeliver runs recovery and a pass on a crash state; it returns what
// broke the promise, if anything, and how many counted resends it saw.
func replayDeliver(t *testing.T, root string, ids []string, before map[string]int) (string, int) {
	s, err := spool.Open(root, "deliverd", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := ledger.Open(filepath.Join(s.Dir(spool.State), "deliverd.ledger"))
	if err != nil {
		return "ledger: " + err.Error(), 0
	}
	defer l.Close()
	target := &accepting{count: map[string]int{}}
	q := newQueue(t, target)
	q.S.Close()
	q.S, q.Ledger = s, l
	if err := q.Recover(); err != nil {
		return "recover: " + err.Error(), 0
	}
	if err := q.Run(context.Background(), true); err != nil {
		return "run: " + err.Error(), 0
	}
	resent := 0
	for _, id := range ids {
		n := before[id] + target.count[id]
		switch {
		case n == 0:
			return id + " never reached the target: lost", resent
		case n > 1+l.Windows():
			return fmt.Sprintf("%s reached the target %d times with %d unknown outcomes counted", id, n, l.Windows()), resent
		}
		resent += n - 1
	}
	for _, d := range []string{"pickup", "tmp/deliverd"} {
		entries, _ := os.ReadDir(filepath.Join(root, d))
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				return d + " not empty: " + e.Name(), resent
			}
		}
	}
	return "", resent
}
