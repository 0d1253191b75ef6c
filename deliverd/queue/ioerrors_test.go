package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/deliverd/ledger"
	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/spool/faultfs"
)

// TestIOErrors fails each spool and ledger call of a deliverd pass in turn
// (faultfs.Faults), lets deliverd stop if it says it must, then restarts
// it on the real file system and runs it again. The pass covers every way
// a message leaves: delivered, one recipient deferred (its envelope
// rewritten), one bounced into badmail/ with a DSN written into pickup/
// and delivered. After the restart every accepted recipient must have
// reached the target once, or again only as an unknown outcome the ledger
// counted (W); the deferred recipient must be in deferred/, the bounced
// message in badmail/, its DSN delivered once; pickup/ and tmp/ empty; no
// failed fsync retried.
func TestIOErrors(t *testing.T) {
	injected, lost, bad, retried, stops, resent := 0, 0, 0, 0, 0, 0
	perKind := map[string]int{}
	for _, fault := range faultfs.Faults {
		for k := 1; ; k++ {
			r := newIODeliver(t)
			f := faultfs.New(fault, k)
			if r.runFaulty(f) {
				stops++
			}
			if f.Hit() == "" {
				break
			}
			injected++
			perKind[fault.String()]++
			retried += f.Retried()
			problem, n := r.restartAndCheck()
			resent += n
			if strings.Contains(problem, " 0 times") {
				lost++
			}
			if problem != "" {
				bad++
				t.Errorf("%s #%d (%s): %s", fault, k, filepath.Base(f.Hit()), problem)
			}
		}
	}
	t.Logf("ioerrors: daemon=deliverd injected=%d lost=%d violations=%d fsync_retried=%d stops=%d counted_resends=%d per_fault=%v",
		injected, lost, bad, retried, stops, resent, perKind)
	if injected < 40 || retried > 0 {
		t.Fatalf("injected %d, fsync retried %d", injected, retried)
	}
}

type ioDeliver struct {
	t      *testing.T
	root   string
	target *scripted
	ids    map[string]string // role -> id
}

// answers: "temp@l" is deferred, "perm@l" bounced, the rest accepted.
var ioAnswers = map[string]string{"temp@l": "temp", "perm@l": "perm"}

func newIODeliver(t *testing.T) *ioDeliver {
	q := newQueue(t, nil)
	r := &ioDeliver{t: t, root: q.S.Root, ids: map[string]string{}}
	r.ids["plain"] = put(t, q, spool.Pickup, "a@l")
	r.ids["two"] = put(t, q, spool.Pickup, "b@l", "c@l")
	r.ids["deferred"] = put(t, q, spool.Pickup, "d@l", "temp@l")
	r.ids["bounced"] = put(t, q, spool.Pickup, "e@l", "perm@l")
	q.Ledger.Close()
	q.S.Close()
	r.target = &scripted{answers: ioAnswers}
	return r
}

// open starts a deliverd on the spool through fs, as main does.
func (r *ioDeliver) open(fs spool.FS) (*Queue, func(), error) {
	q := newQueue(r.t, r.target)
	q.Ledger.Close()
	q.S.Close()
	s, err := spool.Open(r.root, "deliverd", zerolog.Nop())
	if err != nil {
		r.t.Fatal(err)
	}
	s.SetFS(fs)
	l, err := ledger.OpenFS(filepath.Join(s.Dir(spool.State), "deliverd.ledger"), fs)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	l.FullPause = time.Millisecond
	q.S, q.Ledger = s, l
	q.Cfg.Deliver.Connections = 2
	q.IOPause = time.Millisecond
	return q, func() { l.Close(); s.Close() }, nil
}

// runFaulty runs one deliverd through fs until it is done or stops; it
// reports whether it stopped on an error.
func (r *ioDeliver) runFaulty(fs spool.FS) bool {
	q, closeAll, err := r.open(fs)
	if err != nil {
		return true
	}
	defer closeAll()
	if err := q.Recover(); err != nil {
		return true
	}
	return q.Run(context.Background(), true) != nil
}

// restartAndCheck runs deliverd again on the real file system and says
// what broke the promise, and how many counted resends it saw.
func (r *ioDeliver) restartAndCheck() (string, int) {
	q, closeAll, err := r.open(spool.OS{})
	if err != nil {
		return "restart: " + err.Error(), 0
	}
	defer closeAll()
	if err := q.Recover(); err != nil {
		return "recover: " + err.Error(), 0
	}
	for range 2 { // the second pass delivers a DSN the first one wrote
		if err := q.Run(context.Background(), true); err != nil {
			return "run after restart: " + err.Error(), 0
		}
	}
	got := map[string]int{} // id rcpt -> accepted
	for _, j := range r.target.jobs {
		for _, rc := range j.Rcpts {
			if ioAnswers[rc] == "" {
				got[j.ID+" "+rc]++
			}
		}
	}
	w := q.Ledger.Windows()
	resent := 0
	want := map[string][]string{"plain": {"a@l"}, "two": {"b@l", "c@l"}, "deferred": {"d@l"}, "bounced": {"e@l"}}
	for role, rcpts := range want {
		for _, rc := range rcpts {
			n := got[r.ids[role]+" "+rc]
			if n == 0 || n > 1+w {
				return fmt.Sprintf("%s (%s) reached the target %d times, %d unknown outcomes counted", role, rc, n, w), resent
			}
			resent += n - 1
		}
	}
	if problem := r.dsnOnce(got, w); problem != "" {
		return problem, resent
	}
	for role, folder := range map[string]string{"deferred": "deferred", "bounced": "badmail"} {
		if n := r.count(folder, r.ids[role]); n != 1 {
			return fmt.Sprintf("%s message in %s/ %d times", role, folder, n), resent
		}
	}
	for _, d := range []string{"pickup", "tmp/deliverd"} {
		entries, _ := os.ReadDir(filepath.Join(r.root, d))
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				return d + " not empty: " + e.Name(), resent
			}
		}
	}
	return "", resent
}

// dsnOnce checks that one DSN, about the bounced message, reached the
// postmaster, and only once (or again as a counted unknown outcome).
func (r *ioDeliver) dsnOnce(got map[string]int, w int) string {
	n := 0
	for key, c := range got {
		if strings.HasSuffix(key, " postmaster@l") {
			n += c
		}
	}
	if n == 0 || n > 1+w {
		return fmt.Sprintf("the DSN reached the postmaster %d times, %d unknown outcomes counted", n, w)
	}
	return ""
}

// count is how many files in folder are the message id.
func (r *ioDeliver) count(folder, id string) int {
	n := 0
	entries, _ := os.ReadDir(filepath.Join(r.root, folder))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), id) {
			n++
		}
	}
	return n
}
