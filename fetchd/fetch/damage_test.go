package fetch

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// damageLine flips a byte in the middle of line n (from 0) of the file at
// path and returns that line as it was.
func damageLine(t *testing.T, path string, n int) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines) < n+2 {
		t.Fatalf("%s has %d lines, want more than %d", path, len(lines), n+1)
	}
	orig := bytes.Clone(lines[n])
	lines[n][len(lines[n])/2] ^= 0x01
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	return orig
}

// checkDamageEvent asserts one event 1030 for path and its .corrupt copy.
func checkDamageEvent(t *testing.T, r *rig, path string) {
	t.Helper()
	ev := r.log.events(event.JournalDamaged)
	if len(ev) != 1 || ev[0]["file"] != path || ev[0]["skipped"] != float64(1) || ev[0]["saved"] != path+".corrupt" {
		t.Fatalf("events 1030: %v\n%s", ev, r.log)
	}
	if _, err := os.Stat(path + ".corrupt"); err != nil {
		t.Fatal(err)
	}
}

// Issue 16.2: with keep = true, one flipped byte in the second record of
// the UIDL journal makes the next poll fetch that one message again, not
// every message after it.
func TestDamagedUIDLJournalForgetsOneMessage(t *testing.T) {
	r := newRig(t)
	r.cfg.Account[0].Keep = true
	if len(r.want) < 5 {
		t.Fatalf("%d samples, want at least 5", len(r.want))
	}
	if st, err := r.poll(t); err != nil || st.Fetched != len(r.want) {
		t.Fatalf("first poll %+v %v", st, err)
	}
	path := filepath.Join(r.s.Dir(spool.State), "office.uidl")
	damageLine(t, path, 1)
	r.reopen(t)
	st, err := r.poll(t)
	if err != nil || st.Fetched != 1 {
		t.Fatalf("poll after the damage fetched %d (want 1, the damaged record's): %v", st.Fetched, err)
	}
	if n := len(incoming(t, r.s)); n != len(r.want)+1 {
		t.Fatalf("%d files in incoming/, want %d", n, len(r.want)+1)
	}
	checkDamageEvent(t, r, path)
}

// A damaged record of one account in the breaker file leaves the other
// account's record, after it, in force: that account stays stopped.
func TestDamagedBreakerFileKeepsTheOtherAccount(t *testing.T) {
	r := newRig(t)
	home := r.cfg.Account[0]
	home.Name = "home"
	r.cfg.Account = append(r.cfg.Account, home)
	os.WriteFile(home.PasswordFile, []byte("wrong\n"), 0o600)
	r.reopen(t)
	for range breakerTrips {
		for i := range r.cfg.Account {
			r.f.Poll(context.Background(), &r.cfg.Account[i])
		}
	}
	for _, a := range r.cfg.Account {
		if stopped, _ := r.f.Stopped(a.Name); !stopped {
			t.Fatalf("%s not stopped after %d refusals", a.Name, breakerTrips)
		}
	}
	path := filepath.Join(r.s.Dir(spool.State), breakerFile)
	damageLine(t, path, 0)
	b, _ := os.ReadFile(path)
	last := bytes.Fields(bytes.SplitAfter(b, []byte("\n"))[1])
	name, _ := hex.DecodeString(string(last[2]))
	kept := string(name)
	r.reopen(t)
	if stopped, _ := r.f.Stopped(kept); !stopped {
		t.Fatalf("account %s, after the damaged record, resumed:\n%s", kept, r.log)
	}
	checkDamageEvent(t, r, path)
}
