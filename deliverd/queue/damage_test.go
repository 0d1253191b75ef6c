package queue

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"example.org/popspool/shared/spool"
)

// Issue 16.2: a flipped byte in an early ledger record costs that record
// only: copies of the messages delivered after it, brought back (a power
// cut, an operator's restore), are recognised and not delivered again.
func TestDamagedLedgerForgetsOneRecord(t *testing.T) {
	tg := &scripted{answers: map[string]string{}}
	q := newQueue(t, tg)
	var ids []string
	for range 5 {
		ids = append(ids, put(t, q, spool.Pickup, "a@l"))
	}
	q.Cfg.Deliver.Connections = 1 // one message after the other: S, D, S, D...
	runBounded(t, q, 10*time.Second)
	path := filepath.Join(q.S.Dir(spool.State), "deliverd.ledger")
	q.Ledger.Close()
	b, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines) < 10 || !bytes.Contains(lines[0], []byte(" S ")) {
		t.Fatalf("ledger of %d lines, first %q", len(lines), lines[0])
	}
	lines[0][len(lines[0])/2] ^= 0x01 // the first message's S record
	os.WriteFile(path, bytes.Join(lines, nil), 0o600)
	reopenLedger(t, q)
	if d := q.Ledger.Damage; d.Skipped != 1 || d.Saved != path+".corrupt" {
		t.Fatalf("damage %+v", d)
	}
	for _, id := range ids {
		putID(t, q, id, "a@l") // every copy comes back
	}
	runBounded(t, q, 10*time.Second)
	for _, id := range ids {
		if tg.ids[id] != 1 {
			t.Fatalf("%s sent %d times, want once", id, tg.ids[id])
		}
	}
}
