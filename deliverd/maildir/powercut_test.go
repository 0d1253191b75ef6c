package maildir

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.org/popspool/deliverd/ledger"
	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/spool/powercut"
)

const (
	pcHead = "Return-Path: <a@x>\r\nDelivered-To: b@y\r\n"
	pcBody = "Subject: power cut\r\n\r\nline one\r\nline two\r\n"
)

func pcPaths(root string) (ledgerPath, box string) {
	return filepath.Join(root, "state", "deliverd.ledger"), filepath.Join(root, "mail", "alice")
}

// recordMaildir delivers n messages into a Maildir through a power-cut
// recorder, in groups of group (DeliverAll; 1: Deliver), with the
// ledger's records made through it too, as the queue makes them (the S
// records of a group before, a D after each). wrap, if set, wraps the
// recorder.
func recordMaildir(t *testing.T, n, group int, wrap func(*powercut.Recorder) spool.FS) (*powercut.Recorder, []string) {
	t.Helper()
	root := t.TempDir()
	lp, box := pcPaths(root)
	for _, d := range []string{filepath.Dir(lp), filepath.Join(box, "tmp"), filepath.Join(box, "new"), filepath.Join(box, "cur")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := powercut.NewRecorder(root)
	if err != nil {
		t.Fatal(err)
	}
	var fs spool.FS = rec
	if wrap != nil {
		fs = wrap(rec)
	}
	l, err := ledger.OpenFS(lp, fs)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	w := &Writer{FS: fs}
	var ids []string
	for len(ids) < n {
		var mails []Mail
		for range min(group, n-len(ids)) {
			id := spool.NewID()
			ids = append(ids, id)
			mails = append(mails, Mail{Dir: box, ID: id, Head: pcHead, Open: pcOpen})
		}
		if group == 1 {
			id := mails[0].ID
			if err := l.Start(id); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Deliver(box, id, pcHead, strings.NewReader(pcBody), false, false); err != nil {
				t.Fatal(err)
			}
			if err := l.Done(id); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := l.Start(ids[len(ids)-len(mails):]...); err != nil {
			t.Fatal(err)
		}
		for i, r := range w.DeliverAll(mails) {
			if r.Err != nil || r.Dup {
				t.Fatalf("DeliverAll: %+v", r)
			}
			if err := l.Done(mails[i].ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	return rec, ids
}

func pcOpen() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(pcBody)), nil }

// recoverMaildir runs deliverd's start on a materialised state (the
// sweep, then a retry of every message the ledger does not show
// delivered) and returns what broke exactly-once, or "".
func recoverMaildir(root string, ids []string) string {
	lp, box := pcPaths(root)
	l, err := ledger.Open(lp)
	if err != nil {
		return "ledger: " + err.Error()
	}
	defer l.Close()
	Sweep(filepath.Join(root, "mail", "{user}"))
	w := &Writer{}
	for _, id := range ids {
		if l.Delivered(id) {
			continue
		}
		if _, err := w.Deliver(box, id, pcHead, strings.NewReader(pcBody), l.Tried(id), false); err != nil {
			return fmt.Sprintf("retry of %s: %v", id, err)
		}
	}
	for _, id := range ids {
		b, err := os.ReadFile(filepath.Join(box, "new", Name(id)))
		if err != nil {
			return fmt.Sprintf("%s is not in new/: %v", id, err)
		}
		if !bytes.Equal(b, []byte(pcHead+pcBody)) {
			return fmt.Sprintf("%s is incomplete in new/ (%d bytes)", id, len(b))
		}
	}
	if left, _ := os.ReadDir(filepath.Join(box, "tmp")); len(left) > 0 {
		return fmt.Sprintf("tmp/ keeps %d files after the sweep", len(left))
	}
	if all, _ := os.ReadDir(filepath.Join(box, "new")); len(all) != len(ids) {
		return fmt.Sprintf("new/ holds %d files for %d messages", len(all), len(ids))
	}
	return ""
}

// maildirViolations counts the crash states that break exactly-once;
// with firstOnly it stops at the first (the companions need one).
func maildirViolations(t *testing.T, rec *powercut.Recorder, ids []string, firstOnly bool) (states, violations int) {
	t.Helper()
	rng := rand.New(rand.NewSource(1))
	for k := 0; k <= len(rec.Ops) && !(firstOnly && violations > 0); k++ {
		for _, st := range rec.States(k, rng) {
			states++
			root := filepath.Join(t.TempDir(), "s")
			if err := rec.Materialize(st, root); err != nil {
				t.Fatal(err)
			}
			if bad := recoverMaildir(root, ids); bad != "" {
				violations++
				if violations <= 3 {
					t.Logf("after %d calls: %s", k, bad)
				}
			}
		}
	}
	return states, violations
}

// TestPowerCut cuts the power after every file-system call of three
// deliveries into a Maildir, in every state a weak file system may leave
// (the spool's power-cut model): after the restart each message is in
// new/ exactly once and whole, with no window (the file name is the spool
// id, so a retry finds its own copy).
func TestPowerCut(t *testing.T) {
	rec, ids := recordMaildir(t, 3, 1, nil)
	states, violations := maildirViolations(t, rec, ids, false)
	t.Logf("crashstates: calls=%d states=%d violations=%d", len(rec.Ops), states, violations)
	if violations > 0 {
		t.Fatalf("%d crash states broke exactly-once", violations)
	}
}

// TestPowerCutGroups is TestPowerCut for groups (DeliverAll): a group of
// four, whose data one syncfs makes durable, and a group of two, fsynced
// file by file.
func TestPowerCutGroups(t *testing.T) {
	rec, ids := recordMaildir(t, 6, 4, nil)
	states, violations := maildirViolations(t, rec, ids, false)
	t.Logf("crashstates: calls=%d states=%d violations=%d", len(rec.Ops), states, violations)
	if violations > 0 {
		t.Fatalf("%d crash states broke exactly-once", violations)
	}
}

// dropSyncs drops the Maildir's folder fsyncs (dirs: "new", "tmp" or
// both) or the message files' fsyncs (file), to prove the model sees them.
type dropSyncs struct {
	*powercut.Recorder
	dirs string
	file bool
}

func (d dropSyncs) SyncDir(dir string) error {
	if b := filepath.Base(dir); (b == "new" || b == "tmp") && strings.Contains(d.dirs, b) {
		return nil
	}
	return d.Recorder.SyncDir(dir)
}

func (d dropSyncs) SyncFile(f *os.File) error {
	if d.file && strings.Contains(filepath.ToSlash(f.Name()), "/tmp/") {
		return nil
	}
	return d.Recorder.SyncFile(f)
}

func (d dropSyncs) SyncGroup(anchor *os.File, paths []string) error {
	if d.file {
		return nil
	}
	return d.Recorder.SyncGroup(anchor, paths)
}

// TestPowerCutCatchesMissingSyncs: without the folder fsyncs, or without
// tmp/'s, or without the file's, some crash state loses or truncates a
// delivered message. (Without new/'s alone the model finds nothing: it
// counts a rename durable once either of its folders is fsynced, and tmp/
// is; new/ is fsynced because a file system without a journal writes only
// the folder it is asked to.)
func TestPowerCutCatchesMissingSyncs(t *testing.T) {
	for _, group := range []int{1, 4} {
		for _, c := range []dropSyncs{{dirs: "new tmp"}, {dirs: "tmp"}, {file: true}} {
			rec, ids := recordMaildir(t, max(2, group), group, func(r *powercut.Recorder) spool.FS { c.Recorder = r; return c })
			_, violations := maildirViolations(t, rec, ids, true)
			if violations == 0 {
				t.Fatalf("groups of %d: dropping syncs (folders %q, file %v) broke nothing: the model does not see them", group, c.dirs, c.file)
			}
			t.Logf("groups of %d, without the fsyncs (folders %q, file %v): broken", group, c.dirs, c.file)
		}
	}
}
