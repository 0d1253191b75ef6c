package ledger

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"example.org/popspool/shared/journal"
	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/spool/faultfs"
)

func TestLedgerSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.ledger")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := spool.NewID(), spool.NewID(), spool.NewID()
	l.Start(a)
	l.Done(a)
	l.Start(b)
	l.Accept(b, []string{"X@l"})
	l.Start(c)
	l.Window(c)
	l.Close()
	l, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Delivered(a) || l.Delivered(b) || !l.Unfinished(b) || l.Unfinished(a) {
		t.Fatal("states lost")
	}
	if !l.Accepted(b, "x@l") || l.Accepted(b, "y@l") || l.Windows() != 1 {
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
		l.Start(id)
		l.Fail(id, "451", "", nil)
		if i%2 == 0 {
			l.Done(id)
		}
	}
	open := spool.NewID() // an attempt cut after an unknown outcome, then started again
	l.Start(open)
	l.Window(open)
	l.Start(open)
	l.Window(ids[0])
	l.Close()
	before := size(t, path)
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if size(t, path) >= before {
		t.Fatal("the ledger was not compacted")
	}
	for i, id := range ids {
		if l.Delivered(id) != (i%2 == 0) {
			t.Fatalf("id %d: delivered=%v after compaction", i, l.Delivered(id))
		}
	}
	if l.Windows() != 2 || !l.Unfinished(open) {
		t.Fatalf("after compaction: %d unknown outcomes (want 2), open attempt kept: %v", l.Windows(), l.Unfinished(open))
	}
}

func size(t *testing.T, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// A DSN id recorded with F survives a reopen and a compaction, so a retry
// after a crash finds it and sends no second DSN.
func TestBouncedSurvivesReopenAndCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.ledger")
	l, _ := Open(path)
	id, dsn := spool.NewID(), spool.NewID()
	l.Start(id)
	if err := l.Fail(id, "550", dsn, []string{"Bob@l", "eve@l"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1100; i++ { // enough to compact at the next Open
		x := spool.NewID()
		l.Start(x)
		l.Fail(x, "451", "", nil)
	}
	l.Close()
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := l.Bounced(id, []string{"bob@l"}); got != dsn {
		t.Fatalf("Bounced = %q, want %q", got, dsn)
	}
	if got := l.Bounced(id, []string{"carol@l"}); got != "" {
		t.Fatalf("Bounced for another recipient = %q", got)
	}
	if fi, _ := os.Stat(path); fi.Size() > 200_000 {
		t.Fatalf("not compacted: %d bytes", fi.Size())
	}
}

// Concurrent commits share fsyncs and every one is durable on return.
func TestGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.ledger")
	l, _ := Open(path)
	var wg sync.WaitGroup
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = spool.NewID()
	}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(ids); i += 8 {
				if err := l.Start(ids[i]); err != nil {
					t.Error(err)
				}
				if err := l.Done(ids[i]); err != nil {
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	if l.Syncs > 2*uint64(len(ids)) {
		t.Fatalf("%d fsyncs for %d commits", l.Syncs, 2*len(ids))
	}
	t.Logf("%d fsyncs for %d commits", l.Syncs, 2*len(ids))
	l.Close()
	l, _ = Open(path)
	defer l.Close()
	for _, id := range ids {
		if !l.Delivered(id) {
			t.Fatalf("%s lost", id)
		}
	}
}

// After a failed fsync the ledger refuses every further record.
func TestBrokenIsSticky(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.ledger")
	l, _ := Open(path)
	l.j.Close() // the next write fails
	if err := l.Start(spool.NewID()); !errors.Is(err, ErrBroken) {
		t.Fatalf("err %v, want ErrBroken", err)
	}
	if err := l.Done(spool.NewID()); !errors.Is(err, ErrBroken) {
		t.Fatalf("second err %v, want ErrBroken", err)
	}
}

// A record the full disk refused is written again once there is room:
// the caller waits, nothing breaks. Past FullWait the ledger gives up.
func TestFullDiskWaitsThenGivesUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.ledger")
	fs := faultfs.New(faultfs.Fault{Kind: faultfs.Write, Err: syscall.ENOSPC}, 2)
	l, err := OpenFS(path, fs)
	if err != nil {
		t.Fatal(err)
	}
	l.FullPause = time.Millisecond
	refused := 0
	l.OnFull = func(error) { refused++ }
	a, b := spool.NewID(), spool.NewID()
	l.Start(a)
	if err := l.Done(a); err != nil || refused != 1 || !l.Delivered(a) {
		t.Fatalf("Done after one refused write: %v, refused %d", err, refused)
	}
	l.j.Close()
	l, _ = Open(path)
	if !l.Delivered(a) || l.Unfinished(a) {
		t.Fatal("the record written after the wait is not in the ledger")
	}
	l.Close()

	full := &stillFull{}
	l, _ = OpenFS(path, full)
	l.FullPause, l.FullWait = time.Millisecond, 20*time.Millisecond
	if err := l.Start(b); !errors.Is(err, ErrBroken) || full.n < 2 {
		t.Fatalf("a disk that stays full: %v after %d writes, want ErrBroken", err, full.n)
	}
	l.Close()
}

// stillFull refuses every write for lack of space.
type stillFull struct {
	spool.OS
	n int
}

func (s *stillFull) Write(*os.File, []byte) (int, error) {
	s.n++
	return 0, syscall.ENOSPC
}

// Issue 16.1: any number of recipients, of any length an envelope line
// allows, fits the ledger: one record per recipient, a long address by
// its digest. Each survives a reopen and a compaction.
func TestManyAndLongRecipientsFit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.ledger")
	l, _ := Open(path)
	id, dsn := spool.NewID(), spool.NewID()
	long := strings.Repeat("x", 2000) + "@l"
	var rcpts []string
	for i := range 1000 {
		rcpts = append(rcpts, fmt.Sprintf("user-%04d@l", i))
	}
	l.Start(id)
	if err := l.Accept(id, []string{long, "Ok@l"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Fail(id, "550", dsn, append(rcpts, "Z"+long)); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if !l.Accepted(id, strings.ToUpper(long)) || !l.Accepted(id, "ok@l") || l.Accepted(id, "Z"+long) {
			t.Fatalf("%s: accepted recipients wrong", when)
		}
		if l.Bounced(id, []string{"USER-0999@l"}) != dsn || l.Bounced(id, []string{"z" + long}) != dsn || l.Bounced(id, []string{long}) != "" {
			t.Fatalf("%s: bounced recipients wrong", when)
		}
	}
	check("before reopening")
	l.Close()
	l, _ = Open(path)
	check("after reopening")
	l.compact()
	check("after compaction")
	l.Close()
	l, _ = Open(path)
	defer l.Close()
	check("after compaction and reopening")
}

// F records of before 16.1, naming several recipients in one record, are
// still read.
func TestOldFailRecordsRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.ledger")
	j, _, _, _ := journal.Open(path)
	id, dsn := spool.NewID(), spool.NewID()
	j.Append("F", id, "550", dsn, hex.EncodeToString([]byte("Bob@l")), hex.EncodeToString([]byte("eve@l")))
	j.Append("R", id, hex.EncodeToString([]byte("Carol@l")))
	j.Sync()
	j.Close()
	l, _ := Open(path)
	defer l.Close()
	if l.Bounced(id, []string{"bob@l"}) != dsn || l.Bounced(id, []string{"EVE@l"}) != dsn || !l.Accepted(id, "carol@l") {
		t.Fatal("old records lost")
	}
}

// oldID returns a valid id made age ago.
func oldID(age time.Duration) string {
	const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	ms := uint64(time.Now().Add(-age).UnixMilli())
	var b [10]byte
	for i := 9; i >= 0; i-- {
		b[i] = crockford[ms&31]
		ms >>= 5
	}
	return string(b[:]) + spool.NewID()[10:]
}

// Issue 16.5: the ledger is compacted while running, not only at Open:
// its file stays bounded however many messages pass, and nothing it must
// remember is lost.
func TestCompactionWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.ledger")
	l, _ := Open(path)
	l.CompactMin = 100
	compactions := 0
	l.OnCompact = func(before, after int, err error) {
		if err != nil || after >= before {
			t.Errorf("compaction %d -> %d records: %v", before, after, err)
		}
		compactions++
	}
	open := spool.NewID()
	l.Start(open)
	var young []string
	largest := int64(0)
	for i := range 2000 {
		id := oldID(Retention + time.Hour) // past retention: forgotten at a compaction
		if i%100 == 0 {
			id = spool.NewID()
			young = append(young, id)
		}
		l.Start(id)
		l.Done(id)
		largest = max(largest, size(t, path))
	}
	if compactions == 0 {
		t.Fatal("never compacted while running")
	}
	if largest > 20_000 { // 4,000 records, about 160 kB, without compaction
		t.Fatalf("the ledger grew to %d bytes", largest)
	}
	l.Close()
	l, _ = Open(path)
	defer l.Close()
	for _, id := range young {
		if !l.Delivered(id) {
			t.Fatalf("%s lost by a compaction", id)
		}
	}
	if !l.Unfinished(open) {
		t.Fatal("the open attempt was lost by a compaction")
	}
}

// A compaction the full disk refuses leaves the ledger working as it was.
func TestCompactionOnFullDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.ledger")
	fs := faultfs.New(faultfs.Fault{Kind: faultfs.Create, Err: syscall.ENOSPC}, 2) // 1: the ledger, 2: its compaction
	l, err := OpenFS(path, fs)
	if err != nil {
		t.Fatal(err)
	}
	l.CompactMin = 10
	var failed error
	l.OnCompact = func(_, _ int, err error) {
		if failed == nil {
			failed = err
		}
	}
	var ids []string
	for range 50 {
		id := spool.NewID()
		ids = append(ids, id)
		if err := l.Start(id); err != nil {
			t.Fatal(err)
		}
		if err := l.Done(id); err != nil {
			t.Fatal(err)
		}
	}
	if !spool.IsNoSpace(failed) || fs.Hit() == "" {
		t.Fatalf("first compaction: %v", failed)
	}
	l.Close()
	l, _ = Open(path)
	defer l.Close()
	for _, id := range ids {
		if !l.Delivered(id) {
			t.Fatalf("%s lost", id)
		}
	}
}

// TestPlacedSurvivesReopenAndCompaction: a P record (pickup:// target)
// outlives a restart and a compaction until the id's D clears it.
func TestPlacedSurvivesReopenAndCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.ledger")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := spool.NewID(), spool.NewID()
	l.Start(a)
	l.Placing(a)
	l.Start(b)
	l.Placing(b)
	l.Done(b)
	if err := l.compact(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !l.Placed(a) || l.Placed(b) || !l.Delivered(b) || !l.Unfinished(a) {
		t.Fatalf("placed a=%v b=%v, delivered b=%v, unfinished a=%v", l.Placed(a), l.Placed(b), l.Delivered(b), l.Unfinished(a))
	}
}

// Issue 12: the S records of a group share one fsync; a D is written at
// once (a killed process keeps it) and counts at once, but only the next
// commit, or Sync, makes it durable, with no fsync of its own.
func TestStartGroupAndLazyDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.ledger")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, b, c := spool.NewID(), spool.NewID(), spool.NewID()
	if err := l.Start(a, b); err != nil || l.Syncs != 1 || !l.Unfinished(a) || !l.Tried(b) {
		t.Fatalf("Start of two: %v, %d fsyncs (want 1)", err, l.Syncs)
	}
	if err := l.Done(a); err != nil || l.Syncs != 1 || !l.Unsynced() || !l.Delivered(a) {
		t.Fatalf("Done: %v, %d fsyncs (want 1), unsynced %v, delivered %v", err, l.Syncs, l.Unsynced(), l.Delivered(a))
	}
	recs, _, err := journal.Read(path)
	if err != nil || len(recs) != 3 || strings.Join(recs[2], " ") != "D "+a {
		t.Fatalf("the D is not in the file before any fsync: %v %v", recs, err)
	}
	l.Done(b)
	if err := l.Start(c); err != nil || l.Syncs != 2 || l.Unsynced() {
		t.Fatalf("the next Start: %v, %d fsyncs (want 2), unsynced %v", err, l.Syncs, l.Unsynced())
	}
	if err := l.Sync(); err != nil || l.Syncs != 2 {
		t.Fatalf("Sync with nothing to sync: %v, %d fsyncs (want 2)", err, l.Syncs)
	}
	l.Done(c)
	if err := l.Sync(); err != nil || l.Syncs != 3 || l.Unsynced() {
		t.Fatalf("Sync: %v, %d fsyncs (want 3)", err, l.Syncs)
	}
}

// writeCount is the real file system, counting the journal's writes.
type writeCount struct {
	spool.OS
	n int
}

func (w *writeCount) Write(f *os.File, b []byte) (int, error) {
	w.n++
	return w.OS.Write(f, b)
}

// Done of a delivered group writes its D records in one write, none
// fsynced, each counting at once and each in the file; an empty Done
// writes nothing, and a record its check refuses writes none of them.
func TestDoneOfAGroupIsOneWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.ledger")
	fs := &writeCount{}
	l, err := OpenFS(path, fs)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ids := []string{spool.NewID(), spool.NewID(), spool.NewID()}
	if err := l.Start(ids...); err != nil {
		t.Fatal(err)
	}
	writes, syncs := fs.n, l.Syncs
	if err := l.Done(ids...); err != nil || fs.n != writes+1 || l.Syncs != syncs {
		t.Fatalf("Done of 3: %v, %d writes (want 1), %d fsyncs (want 0)", err, fs.n-writes, l.Syncs-syncs)
	}
	for _, id := range ids {
		if !l.Delivered(id) || l.Unfinished(id) {
			t.Fatalf("%s: delivered %v, unfinished %v", id, l.Delivered(id), l.Unfinished(id))
		}
	}
	recs, _, err := journal.Read(path)
	if err != nil || len(recs) != 6 || strings.Join(recs[5], " ") != "D "+ids[2] {
		t.Fatalf("the Ds are not in the file: %v %v", recs, err)
	}
	if err := l.Done(); err != nil || fs.n != writes+1 {
		t.Fatalf("an empty Done: %v, %d writes", err, fs.n-writes)
	}
	bad := spool.NewID()
	if err := l.Done(bad, "a\nb"); err == nil || l.Delivered(bad) || fs.n != writes+1 {
		t.Fatalf("a refused record: %v, delivered %v, %d writes", err, l.Delivered(bad), fs.n-writes)
	}
}
