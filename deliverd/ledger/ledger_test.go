package ledger

import (
	"path/filepath"
	"testing"

	"example.org/popspool/shared/spool"
)

func TestLedgerSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.ledger")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := spool.NewID(), spool.NewID(), spool.NewID()
	l.Start(a, 1)
	l.Done(a)
	l.Start(b, 1)
	l.Accept(b, []string{"X@l"})
	l.Start(c, 1)
	l.Window(c)
	l.Close()
	l, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Delivered(a) || l.Delivered(b) || !l.Unfinished(b) || l.Unfinished(a) {
		t.Fatal("states lost")
	}
	if !l.Accepted(b, "x@l") || l.Accepted(b, "y@l") || l.Windows != 1 {
		t.Fatal("recipients or windows lost")
	}
}

func TestCompactionKeepsDelivered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.ledger")
	l, _ := Open(path)
	var ids []string
	for i := 0; i < 700; i++ {
		id := spool.NewID()
		ids = append(ids, id)
		l.Start(id, 1)
		l.Fail(id, "451")
		if i%2 == 0 {
			l.Done(id)
		}
	}
	l.Close()
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if l.Delivered(id) != (i%2 == 0) {
			t.Fatalf("id %d: delivered=%v after compaction", i, l.Delivered(id))
		}
	}
}
