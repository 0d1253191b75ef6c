package fetch

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"example.org/popspool/shared/journal"
	"example.org/popspool/shared/spool"
)

// stopOffice trips the breaker of the rig's account with a wrong password.
func stopOffice(t *testing.T, r *rig) {
	t.Helper()
	os.WriteFile(r.cfg.Account[0].PasswordFile, []byte("wrong-pass-7c1\n"), 0o600)
	for range breakerTrips {
		r.poll(t)
	}
	if stopped, _ := r.f.Stopped("office"); !stopped {
		t.Fatalf("not stopped after %d refusals:\n%s", breakerTrips, r.log)
	}
}

// breakerRecords reads the breaker file; print is the stopped account's
// settings print.
func breakerRecords(t *testing.T, r *rig) (recs [][]string, print string) {
	t.Helper()
	recs, err := readRecords(filepath.Join(r.s.Dir(spool.State), breakerFile), &r.f.Log)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if rec[0] == "acct" && rec[3] == "1" {
			print = rec[4]
		}
	}
	if print == "" {
		t.Fatalf("no stopped account in the breaker file: %q", recs)
	}
	return recs, print
}

// TestBreakerFileIsNoGuessingAid: what the breaker file says about the
// refused settings cannot be recomputed from the file and a guessed
// password alone: it needs the key kept beside it (0600), which a copy of
// the breaker file does not carry.
func TestBreakerFileIsNoGuessingAid(t *testing.T) {
	r := newRig(t)
	stopOffice(t, r)
	recs, print := breakerRecords(t, r)
	guess := fingerprint(&r.cfg.Account[0]) // the right guess of the refused password
	for _, rec := range recs {
		for _, field := range rec {
			salt, _ := hex.DecodeString(field)
			if salted(salt, guess) == print || salted([]byte(field), guess) == print {
				t.Fatalf("the print is the guess hashed with the file's own field %q", field)
			}
		}
	}
	if salted(nil, guess) == print {
		t.Fatal("the print is an unkeyed hash of the settings")
	}
	keyPath := filepath.Join(r.s.Dir(spool.State), keyFile)
	fi, err := os.Stat(keyPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	key, err := readRecords(keyPath, &r.f.Log)
	if err != nil || len(key) != 1 {
		t.Fatalf("key records %q %v", key, err)
	}
	k, _ := hex.DecodeString(key[0][1])
	if keyed(k, guess) != print {
		t.Fatal("the print is not the settings keyed with the key file")
	}
	r.reopen(t)
	if stopped, _ := r.f.Stopped("office"); !stopped {
		t.Fatalf("resumed after a restart with nothing changed:\n%s", r.log)
	}
}

// TestBreakerFileBeforeTheKey: a breaker file of an earlier version (a
// salt record, salted prints) keeps its stopped account stopped and is
// rewritten in the keyed form at start.
func TestBreakerFileBeforeTheKey(t *testing.T) {
	r := newRig(t)
	stopOffice(t, r)
	recs, _ := breakerRecords(t, r)
	salt := []byte("0123456789abcdef")
	old := [][]string{{"salt", hex.EncodeToString(salt)}}
	for _, rec := range recs {
		rec[4] = salted(salt, fingerprint(&r.cfg.Account[0]))
		old = append(old, rec)
	}
	path := filepath.Join(r.s.Dir(spool.State), breakerFile)
	r.f.Close()
	if err := journal.RewriteFS(path, old, spool.OS{}); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(r.s.Dir(spool.State), keyFile))
	r.reopen(t)
	if stopped, _ := r.f.Stopped("office"); !stopped {
		t.Fatalf("an old breaker file's stopped account resumed:\n%s", r.log)
	}
	b, _ := os.ReadFile(path)
	if bytes.Contains(b, []byte("salt")) {
		t.Fatalf("old file not rewritten:\n%s", b)
	}
	r.reopen(t)
	if stopped, _ := r.f.Stopped("office"); !stopped {
		t.Fatalf("resumed after the rewrite:\n%s", r.log)
	}
}
