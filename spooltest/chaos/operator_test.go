//go:build unix

package chaos

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// operator does one thing an operator may do at any time (DESIGN.md,
// "Spool layout"): retry a deferred or a failed file, copy a message in
// slowly, drop a garbage file or an editor's dot-file, press Retrieve Now.
func (r *run) operator() {
	type action struct {
		name string
		do   func() bool
	}
	actions := []action{
		{"mv-deferred-pickup", func() bool { return r.move("deferred", "pickup") }},
		{"mv-failed-incoming", func() bool { return r.move("failed", "incoming") }},
		{"slow-copy", r.slowCopy},
		{"garbage", r.dropGarbage},
		{"dot-file", r.dropDotFile},
		{"retrieve-now", r.retrieveNow},
	}
	a := actions[r.rng.Intn(len(actions))]
	if a.do() {
		r.c.ops[a.name]++
	}
}

// move moves a random file of folder from into folder to, as mv does.
func (r *run) move(from, to string) bool {
	entries, _ := os.ReadDir(filepath.Join(r.f.Spool, from))
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return false
	}
	n := names[r.rng.Intn(len(names))]
	// A daemon may take the file first (deliverd retrying a deferred one):
	// then there is nothing to move.
	return os.Rename(filepath.Join(r.f.Spool, from, n), filepath.Join(r.f.Spool, to, n)) == nil
}

// slowCopy writes a new message into incoming/ in ten pieces over about a
// second, as cp over a slow share does: rewrited must take it only once
// it stopped changing, and it must be delivered exactly once.
func (r *run) slowCopy() bool {
	i := r.c.ops["slow-copy"]
	name := fmt.Sprintf("slowcopy-%d.eml", i)
	b := copyMessage(r.rng, i, r.seed)
	r.want = append(r.want, Want{Name: name, Wire: b, Copied: true})
	path := filepath.Join(r.f.Spool, "incoming", name)
	r.copies.Add(1)
	go func() {
		defer r.copies.Done()
		if err := writeSlowly(path, b, 10, 100*time.Millisecond); err != nil {
			r.copyMu.Lock()
			r.copyErr = append(r.copyErr, err)
			r.copyMu.Unlock()
		}
	}()
	return true
}

func writeSlowly(path string, b []byte, pieces int, gap time.Duration) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	step := (len(b) + pieces - 1) / pieces
	for off := 0; off < len(b); off += step {
		if _, err := f.Write(b[off:min(off+step, len(b))]); err != nil {
			f.Close()
			return err
		}
		time.Sleep(gap)
	}
	return f.Close()
}

// copyMessage is a message an operator copies in by hand.
func copyMessage(rng *rand.Rand, i int, seed int64) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Operator <operator@example.local>\r\nTo: alice@example.local\r\n")
	fmt.Fprintf(&b, "Subject: copied in by hand, %d of seed %d\r\nMessage-ID: <copy-%d-%d@example.local>\r\n\r\n", i, seed, seed, i)
	size := 2000 + rng.Intn(60000)
	for b.Len() < size {
		fmt.Fprintf(&b, "copied line %d: %x\r\n", b.Len(), rng.Int63())
	}
	return []byte(b.String())
}

// dropGarbage writes a file that is no mail at all into incoming/:
// rewrited must put it in failed/ with a reason.
func (r *run) dropGarbage() bool {
	i := r.c.ops["garbage"]
	b := []byte(fmt.Sprintf("GARBAGE %d OF CHAOS SEED %d NOT A MAIL HEADER\r\n", i, r.seed))
	junk := make([]byte, 100+r.rng.Intn(2000))
	r.rng.Read(junk)
	b = append(b, junk...)
	if err := os.WriteFile(filepath.Join(r.f.Spool, "incoming", fmt.Sprintf("garbage-%d.eml", i)), b, 0o600); err != nil {
		r.t.Fatal(err)
	}
	r.garbage = append(r.garbage, b)
	return true
}

// dropDotFile leaves an editor's temporary file in a watched folder: the
// daemons must ignore it and leave it alone.
func (r *run) dropDotFile() bool {
	i := r.c.ops["dot-file"]
	folder := []string{"incoming", "pickup", "deferred"}[r.rng.Intn(3)]
	name := []string{".%d.eml.swp", ".#draft-%d.eml", ".~lock.%d.eml#"}[r.rng.Intn(3)]
	path := filepath.Join(r.f.Spool, folder, fmt.Sprintf(name, i))
	b := []byte(fmt.Sprintf("editor state %d of seed %d\r\n", i, r.seed))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		r.t.Fatal(err)
	}
	r.dots[path] = b
	return true
}

// retrieveNow presses the "Retrieve Now" button.
func (r *run) retrieveNow() bool {
	return os.WriteFile(filepath.Join(r.f.Spool, "control", "retrieve-now"), nil, 0o600) == nil
}
