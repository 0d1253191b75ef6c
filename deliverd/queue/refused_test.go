package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"example.org/popspool/deliverd/ledger"
	"example.org/popspool/deliverd/smtpc"
	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/spool"
)

// refusedRcpts returns n recipients the scripted target refuses (550).
func refusedRcpts(tg *scripted, n int) []string {
	rcpts := make([]string, n)
	for i := range rcpts {
		rcpts[i] = fmt.Sprintf("unknown-local-user-%04d@l", i)
		tg.answers[rcpts[i]] = "perm"
	}
	return rcpts
}

// runBounded runs the queue once, failing the test if it is still busy
// after d: a file that loops would keep it running for ever.
func runBounded(t *testing.T, q *Queue, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	if err := q.Run(ctx, true); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the queue was still busy after %v", time.Since(start))
	}
}

// Issue 16.1: a message with many refused recipients goes to badmail/ with
// one DSN at the first attempt; the ledger record naming them all used to
// outgrow a journal record and send the file round for ever.
func TestManyRefusedRecipientsBounceOnce(t *testing.T) {
	for _, n := range []int{80, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			tg := &scripted{answers: map[string]string{}}
			q := newQueue(t, tg)
			q.IOPause = time.Millisecond
			id := put(t, q, spool.Pickup, refusedRcpts(tg, n)...)
			runBounded(t, q, 10*time.Second)
			env, _ := read(t, q, spool.Badmail, id)
			if len(env.Receivers) != n || env.Attempts != 1 {
				t.Fatalf("badmail envelope: %d recipients, attempt %d", len(env.Receivers), env.Attempts)
			}
			d := tg.dsns(t)
			if len(d) != 1 {
				t.Fatalf("%d DSNs, want 1", len(d))
			}
			if got := strings.Count(deliveryStatus(t, d[0]), "Final-Recipient:"); got != n {
				t.Fatalf("the DSN reports %d recipients, want %d", got, n)
			}
			if tg.ids[id] != 1 {
				t.Fatalf("the message was sent %d times, want 1", tg.ids[id])
			}
			// The ledger remembers the DSN for each recipient after a restart.
			reopenLedger(t, q)
			if q.Ledger.Bounced(id, env.Receivers[n-1:]) == "" {
				t.Fatal("the DSN of the last recipient is not in the ledger")
			}
		})
	}
}

// Accepted and refused recipients in one message: the accepted ones are
// not sent again when the badmail file is retried, and no second DSN goes
// out.
func TestManyMixedRecipients(t *testing.T) {
	tg := &scripted{answers: map[string]string{}}
	q := newQueue(t, tg)
	refused := refusedRcpts(tg, 200)
	var ok []string
	for i := range 100 {
		ok = append(ok, fmt.Sprintf("known-%03d@l", i))
	}
	id := put(t, q, spool.Pickup, append(ok, refused...)...)
	runBounded(t, q, 10*time.Second)
	env, _ := read(t, q, spool.Badmail, id)
	if len(env.Receivers) != len(refused) {
		t.Fatalf("badmail holds %d recipients, want %d", len(env.Receivers), len(refused))
	}
	reopenLedger(t, q)
	for _, r := range ok {
		if !q.Ledger.Accepted(id, r) {
			t.Fatalf("%s not recorded as accepted", r)
		}
	}
	// The operator retries the whole original envelope.
	os.Remove(filepath.Join(q.S.Dir(spool.Badmail), id+".eml"))
	putID(t, q, id, append(ok, refused...)...)
	runBounded(t, q, 10*time.Second)
	var last Job
	for _, j := range tg.jobs {
		if j.ID == id {
			last = j
		}
	}
	if len(last.Rcpts) != len(refused) {
		t.Fatalf("the retry went to %d recipients, want the %d refused ones", len(last.Rcpts), len(refused))
	}
	if n := len(tg.dsns(t)); n != 1 {
		t.Fatalf("%d DSNs, want 1", n)
	}
}

// A local error that puts the same file back with the same error again and
// again is permanent: after LocalRepeats rounds the file goes to badmail/
// with the reason, and one DSN.
func TestRepeatedLocalErrorGoesToBadmail(t *testing.T) {
	tg := &scripted{answers: map[string]string{"perm@l": "perm"}}
	q := newQueue(t, tg)
	q.IOPause = time.Millisecond
	id := put(t, q, spool.Pickup, "perm@l", "ok@l")
	// Publishing the DSN fails the first 5 times (of the limit 5).
	fs := &failDSNMove{orig: id + ".eml", left: 5}
	q.S.SetFS(fs)
	runBounded(t, q, 10*time.Second)
	env, _ := read(t, q, spool.Badmail, id)
	if !strings.HasPrefix(env.LastError, "local error repeated 5 times: ") || strings.Join(env.Receivers, ",") != "perm@l" {
		t.Fatalf("badmail envelope %+v", env)
	}
	if tg.ids[id] != 5 {
		t.Fatalf("the message was sent %d times, want 5", tg.ids[id])
	}
	d := tg.dsns(t)
	if len(d) != 1 {
		t.Fatalf("%d DSNs, want 1", len(d))
	}
	if ds := deliveryStatus(t, d[0]); !strings.Contains(ds, "Final-Recipient: rfc822; perm@l\r\nAction: failed\r\nStatus: 5.3.0") || strings.Contains(ds, "ok@l") {
		t.Fatalf("DSN:\n%s", ds)
	}
}

// A DSN that can never be published: the file still leaves the loop, for
// badmail/, without a DSN (event 4015 says so).
func TestRepeatedLocalErrorWithoutDSN(t *testing.T) {
	tg := &scripted{answers: map[string]string{"perm@l": "perm"}}
	q := newQueue(t, tg)
	q.IOPause = time.Millisecond
	id := put(t, q, spool.Pickup, "perm@l")
	q.S.SetFS(&failDSNMove{orig: id + ".eml", left: 1 << 30})
	runBounded(t, q, 10*time.Second)
	env, _ := read(t, q, spool.Badmail, id)
	if !strings.HasPrefix(env.LastError, "local error repeated 5 times: ") || len(tg.dsns(t)) != 0 {
		t.Fatalf("badmail envelope %+v, %d DSNs", env, len(tg.dsns(t)))
	}
}

// A full disk is not the file's fault: it is never counted as a repeat.
func TestFullDiskIsNotARepeat(t *testing.T) {
	q := newQueue(t, &scripted{})
	full := &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
	for range 2 * DefaultLocalRepeats {
		if _, permanent := q.repeated("id", full); permanent {
			t.Fatal("a full disk made a file permanent")
		}
	}
}

// reopenLedger closes the queue's ledger and reads it again from disk.
func reopenLedger(t *testing.T, q *Queue) {
	t.Helper()
	path := filepath.Join(q.S.Dir(spool.State), "deliverd.ledger")
	q.Ledger.Close()
	l, err := ledger.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	q.Ledger = l
}

// putID writes a spool file of that id into pickup/.
func putID(t *testing.T, q *Queue, id string, rcpts ...string) {
	t.Helper()
	var b strings.Builder
	envelope.Envelope{Sender: "a@x", HasSender: true, Receivers: rcpts}.Write(&b)
	p := filepath.Join(q.S.Dir(spool.Pickup), id+".eml")
	if err := os.WriteFile(p, []byte(b.String()+body), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	os.Chtimes(p, old, old)
}

// failDSNMove fails the move of any file but orig into pickup/ (the DSN's
// publication) while left > 0.
type failDSNMove struct {
	spool.OS
	orig string
	mu   sync.Mutex
	left int
}

func (f *failDSNMove) RenameNoReplace(oldpath, newpath string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if filepath.Base(oldpath) != f.orig && filepath.Base(filepath.Dir(newpath)) == spool.Pickup && f.left > 0 {
		f.left--
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: syscall.EIO}
	}
	return f.OS.RenameNoReplace(oldpath, newpath)
}

// The case over SMTP: 80 recipients the server refuses with
// 550 5.1.1. Each RCPT is sent once, the file reaches badmail/, and one
// DSN reaches the postmaster.
func TestSMTPManyRefusedRecipients(t *testing.T) {
	f := newFake(t)
	f.Rcpt = func(rcpt string) string {
		if strings.HasPrefix(rcpt, "unknown-") {
			return "550 5.1.1 no such user"
		}
		return ""
	}
	target, err := smtpc.ParseTarget(f.url())
	if err != nil {
		t.Fatal(err)
	}
	tg := &scripted{answers: map[string]string{}}
	q := newQueue(t, &SMTP{Target: target, Opt: smtpc.Options{StartTLS: "none"}})
	id := put(t, q, spool.Pickup, refusedRcpts(tg, 80)...)
	runBounded(t, q, 20*time.Second)
	q.Target.Close()
	read(t, q, spool.Badmail, id)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.rcptLines) != 81 || len(f.got) != 1 || strings.Join(f.got[0].rcpts, ",") != "postmaster@l" {
		t.Fatalf("%d RCPT commands (want 80 and the DSN's), %d messages taken (want the DSN)", len(f.rcptLines), len(f.got))
	}
}
