package fetch

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
	"example.org/popspool/spooltest/pop3srv"
)

// TestPowerCut records one fetchd session (download, journal, move into
// incoming/, DELE, QUIT) through the power-cut model, with the POP3
// server's deletions marked in the trace, then rebuilds every state a
// power cut could leave at every step and runs fetchd's recovery on it.
// It checks the promise of "durable before irreversible": a message the
// server has deleted is in incoming/; a message in incoming/ that the
// server still has is in the journal (else the next poll would fetch it
// twice); nothing is left in tmp/fetchd.
func TestPowerCut(t *testing.T) {
	rec, cfg, msgs := recordFetch(t, nil)
	points, states, violations := checkFetchStates(t, rec, cfg, msgs, false)
	t.Logf("crashstates: traces=1 (fetchd) points=%d states=%d violations=%d", points, states, violations)
	if violations > 0 {
		t.Fatalf("%d crash states broke the promise", violations)
	}
}

// TestPowerCutCatchesMissingJournalSync proves the model sees the journal:
// with the journal's fsync dropped, a deleted message is lost.
func TestPowerCutCatchesMissingJournalSync(t *testing.T) {
	rec, cfg, msgs := recordFetch(t, func(r *powercut.Recorder) spool.FS { return noJournalSync{r} })
	if _, _, violations := checkFetchStates(t, rec, cfg, msgs, true); violations == 0 {
		t.Fatal("without the journal fsync no crash state lost a message: the model is blind")
	}
}

// TestPowerCutCatchesMissingTmpSync: without fsyncs of tmp/fetchd, a
// journal record can outlive the file it records, and the next poll would
// DELE a message that is nowhere.
func TestPowerCutCatchesMissingTmpSync(t *testing.T) {
	rec, cfg, msgs := recordFetch(t, func(r *powercut.Recorder) spool.FS { return noTmpSync{r} })
	if _, _, violations := checkFetchStates(t, rec, cfg, msgs, true); violations == 0 {
		t.Fatal("without fsyncs of tmp/fetchd no crash state broke the promise: the model is blind")
	}
}

// TestPowerCutCatchesMissingDataSync: without the batch's data sync
// (spool.Group), the journal can record, and the server delete, a
// message whose file holds nothing after the cut.
func TestPowerCutCatchesMissingDataSync(t *testing.T) {
	rec, cfg, msgs := recordFetch(t, func(r *powercut.Recorder) spool.FS { return noGroupSync{r} })
	if _, _, violations := checkFetchStates(t, rec, cfg, msgs, true); violations == 0 {
		t.Fatal("without the data sync no crash state broke the promise: the model is blind")
	}
}

type noGroupSync struct{ *powercut.Recorder }

func (noGroupSync) SyncGroup(*os.File, []string) error { return nil }

type noTmpSync struct{ *powercut.Recorder }

func (n noTmpSync) SyncDir(dir string) error {
	if strings.HasSuffix(dir, filepath.Join("tmp", "fetchd")) {
		return nil
	}
	return n.Recorder.SyncDir(dir)
}

type noJournalSync struct{ *powercut.Recorder }

func (n noJournalSync) SyncFile(f *os.File) error {
	if strings.HasSuffix(f.Name(), ".uidl") {
		return nil
	}
	return n.Recorder.SyncFile(f)
}

// TestPowerCutBatchInFlight records a session of 7 messages in batches
// of 2, each batch made durable while the next downloads (flight.go;
// the group sync is slowed so that the next batch's parts are created
// between a batch's data sync and its journal record), and checks every
// power-cut state of that interleaving. The companions drop each of the
// three syncs in the same run and must find a broken promise.
func TestPowerCutBatchInFlight(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(*powercut.Recorder) spool.FS
		ok   bool
	}{
		{"every sync", func(r *powercut.Recorder) spool.FS { return slowGroupSync{r} }, true},
		{"no journal sync", func(r *powercut.Recorder) spool.FS { return slowGroupSync{noJournalSync{r}} }, false},
		{"no tmp sync", func(r *powercut.Recorder) spool.FS { return slowGroupSync{noTmpSync{r}} }, false},
		{"no data sync", func(r *powercut.Recorder) spool.FS { return slowGroupSync{noGroupSync{r}} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, cfg, msgs := recordFetchN(t, 7, 2, tc.wrap)
			if !createdInFlight(rec.Ops, 2) {
				t.Fatal("no part was created while a batch was in flight: the trace does not test the overlap")
			}
			points, states, violations := checkFetchStates(t, rec, cfg, msgs, !tc.ok)
			t.Logf("crashstates: traces=1 (fetchd, batches in flight) points=%d states=%d violations=%d", points, states, violations)
			switch {
			case tc.ok && violations > 0:
				t.Fatalf("%d crash states broke the promise", violations)
			case !tc.ok && violations == 0:
				t.Fatal("with a sync dropped no crash state broke the promise: the model is blind")
			}
		})
	}
}

// slowGroupSync holds each group sync back a moment, so that the
// session downloads the next batch meanwhile.
type slowGroupSync struct{ spool.FS }

func (s slowGroupSync) SyncGroup(anchor *os.File, paths []string) error {
	time.Sleep(20 * time.Millisecond)
	return s.FS.SyncGroup(anchor, paths)
}

// createdInFlight reports whether the trace shows the next batch
// downloading while one is made durable: when a journal record is
// written, more parts than a batch holds are in tmp/fetchd.
func createdInFlight(ops []powercut.Op, batch int) bool {
	inTmp := 0
	for _, op := range ops {
		switch {
		case op.Kind == "create" && strings.HasSuffix(op.Path, ".part"):
			inTmp++
		case op.Kind == "rename" && strings.HasSuffix(op.Path, ".part"):
			inTmp--
		case op.Kind == "write" && strings.HasSuffix(op.Path, ".uidl") && inTmp > batch:
			return true
		}
	}
	return false
}

func recordFetch(t *testing.T, wrap func(*powercut.Recorder) spool.FS) (*powercut.Recorder, *config.Config, map[string]string) {
	return recordFetchN(t, 3, 0, wrap)
}

// recordFetchN records one session fetching n messages in batches of
// batch (0: the default).
func recordFetchN(t *testing.T, n, batch int, wrap func(*powercut.Recorder) spool.FS) (*powercut.Recorder, *config.Config, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	msgs := map[string]string{}
	var uids []string
	for i := 1; i <= n; i++ {
		uids = append(uids, fmt.Sprintf("uid-%d", i))
		msgs[fmt.Sprintf("uid-%d", i)] = fmt.Sprintf("From: a@example.net\r\nSubject: %d\r\n\r\nbody %d\r\n", i, i)
	}
	srv, cfg := testAccount(t, dir, msgs)
	s, err := spool.Open(filepath.Join(dir, "spool"), "fetchd", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := powercut.NewRecorder(s.Root)
	if err != nil {
		t.Fatal(err)
	}
	var fs spool.FS = rec
	if wrap != nil {
		fs = wrap(rec)
	}
	s.SetFS(fs)
	srv.SetFault(func(ev pop3srv.Event) bool {
		if ev.Name == pop3srv.EvDeleted {
			rec.Mark(uids[ev.Msg-1])
		}
		return false
	})
	f, err := New(s, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	f.batchSize = batch
	if _, err := f.Poll(context.Background(), &cfg.Account[0]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s.Close()
	if len(rec.Marks(len(rec.Ops))) != n {
		t.Fatalf("server deleted %d messages, want %d", len(rec.Marks(len(rec.Ops))), n)
	}
	return rec, cfg, msgs
}

// checkFetchStates checks every crash state of the trace; a companion
// (blind) stops at the first violation, which is all it looks for.
func checkFetchStates(t *testing.T, rec *powercut.Recorder, cfg *config.Config, msgs map[string]string, blind bool) (points, states, violations int) {
	rng := rand.New(rand.NewSource(1))
	for k := 0; k <= len(rec.Ops); k++ {
		points++
		deleted := map[string]bool{}
		for _, m := range rec.Marks(k) {
			deleted[m] = true
		}
		for _, st := range rec.States(k, rng) {
			states++
			root := filepath.Join(t.TempDir(), "s")
			if err := rec.Materialize(st, root); err != nil {
				t.Fatal(err)
			}
			if bad := recoverFetch(t, root, cfg, msgs, deleted); bad != "" {
				violations++
				if violations <= 3 {
					t.Logf("after %d calls: %s", k, bad)
				}
				if blind {
					return points, states, violations
				}
			}
		}
	}
	return points, states, violations
}

func recoverFetch(t *testing.T, root string, cfg *config.Config, msgs map[string]string, deleted map[string]bool) string {
	s, err := spool.Open(root, "fetchd", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := New(s, cfg, zerolog.Nop())
	if err != nil {
		return "recovery: " + err.Error()
	}
	defer f.Close()
	seen := f.journals["office"].seen
	for uid, m := range msgs {
		n := copiesIn(filepath.Join(root, "incoming"), m)
		_, recorded := seen[uid]
		switch {
		case deleted[uid] && n == 0:
			return uid + " deleted on the server and not in incoming/: lost"
		case recorded && n == 0:
			return uid + " recorded in the journal but not on disk: the next poll would DELE it unsaved"
		case n > 1:
			return fmt.Sprintf("%s in incoming/ %d times", uid, n)
		case !deleted[uid] && n == 1 && !recorded:
			return uid + " in incoming/ without a journal record: the next poll fetches it again"
		}
	}
	if left, _ := os.ReadDir(s.TmpDir()); len(left) > 1 {
		return fmt.Sprintf("tmp/fetchd holds %d entries after recovery", len(left))
	}
	return ""
}

func copiesIn(dir, m string) int {
	n := 0
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if bytes.HasSuffix(b, []byte(m)) {
			n++
		}
	}
	return n
}
