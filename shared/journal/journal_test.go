package journal

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/spool/faultfs"
)

func TestAppendReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, recs, torn, err := Open(path)
	if err != nil || len(recs) != 0 || torn != 0 {
		t.Fatal(recs, torn, err)
	}
	j.Append("F", "6162", "ID1")
	j.Append("D", "ID1")
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	j.Close()
	_, recs, torn, err = Open(path)
	want := [][]string{{"F", "6162", "ID1"}, {"D", "ID1"}}
	if err != nil || torn != 0 || !reflect.DeepEqual(recs, want) {
		t.Fatalf("got %v torn %d err %v", recs, torn, err)
	}
}

// TestTakeWriteSyncBesideAppend: records taken are written and fsynced
// in another goroutine while the next ones are appended (fetchd's batch
// in flight, run with -race); the log holds them all, in order.
func TestTakeWriteSyncBesideAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, _, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var want [][]string
	for batch := range 4 {
		for i := range 3 {
			r := []string{"F", fmt.Sprintf("%02d%02d", batch, i), "ID"}
			want = append(want, r)
			j.Append(r...)
		}
		taken := j.Take()
		done := make(chan error)
		go func() { done <- j.WriteSync(taken) }()
		j.Append("X", "next") // beside the write: stays in the buffer
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if b := j.Take(); string(b) != string(mustEncode(t, "X", "next")) {
			t.Fatalf("buffer after WriteSync holds %q", b)
		}
	}
	if err := j.WriteSync(nil); err != nil {
		t.Fatal(err)
	}
	j.Close()
	_, recs, torn, err := Open(path)
	if err != nil || torn != 0 || !reflect.DeepEqual(recs, want) {
		t.Fatalf("got %v torn %d err %v", recs, torn, err)
	}
}

func mustEncode(t *testing.T, fields ...string) []byte {
	t.Helper()
	b, err := encode(fields)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTornTailTruncated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, _, _, _ := Open(path)
	j.Append("D", "A")
	j.Append("D", "B")
	j.Sync()
	j.Close()
	full, _ := os.ReadFile(path)
	for cut := 1; cut < len(full)/2; cut++ {
		os.WriteFile(path, full[:len(full)-cut], 0o600)
		j, recs, torn, err := Open(path)
		if err != nil || len(recs) != 1 || recs[0][1] != "A" || torn != int64(len(full)/2-cut) {
			t.Fatalf("cut %d: %v torn %d %v", cut, recs, torn, err)
		}
		j.Append("D", "C")
		j.Sync()
		j.Close()
		_, recs, _, _ = Open(path)
		if len(recs) != 2 || recs[1][1] != "C" {
			t.Fatalf("cut %d: append after truncation: %v", cut, recs)
		}
	}
}

func TestCorruptRecordEndsLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, _, _, _ := Open(path)
	j.Append("D", "A")
	j.Append("D", "B")
	j.Sync()
	j.Close()
	b, _ := os.ReadFile(path)
	b[len(b)-2] ^= 1
	os.WriteFile(path, b, 0o600)
	_, recs, torn, _ := Open(path)
	if len(recs) != 1 || torn == 0 {
		t.Fatalf("%v %d", recs, torn)
	}
}

func TestFieldsValidated(t *testing.T) {
	j, _, _, _ := Open(filepath.Join(t.TempDir(), "j"))
	if j.Append("a b") == nil || j.Append("") == nil || j.Append("x\n") == nil {
		t.Fatal("bad field accepted")
	}
}

func TestRewrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, _, _, _ := Open(path)
	j.Append("D", "A")
	j.Sync()
	j.Close()
	if err := Rewrite(path, [][]string{{"D", "Z"}}); err != nil {
		t.Fatal(err)
	}
	_, recs, _, _ := Open(path)
	if len(recs) != 1 || recs[0][1] != "Z" {
		t.Fatal(recs)
	}
}

// A write that fails half-way (a full disk) is undone: the log keeps its
// whole records, and the same journal takes the next Sync.
func TestFailedWriteIsUndone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	fs := faultfs.New(faultfs.Fault{Kind: faultfs.Write, Err: syscall.ENOSPC}, 2)
	j, _, _, err := OpenFS(path, fs)
	if err != nil {
		t.Fatal(err)
	}
	j.Append("D", "ID1")
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	j.Append("D", "ID2")
	err = j.Sync()
	if !errors.Is(err, ErrNotWritten) || !spool.IsNoSpace(err) || fs.Hit() == "" {
		t.Fatalf("second sync: %v", err)
	}
	j.Append("D", "ID3")
	if err := j.Sync(); err != nil {
		t.Fatalf("sync after the undone write: %v", err)
	}
	j.Close()
	_, recs, torn, err := Open(path)
	want := [][]string{{"D", "ID1"}, {"D", "ID3"}}
	if err != nil || torn != 0 || !reflect.DeepEqual(recs, want) {
		t.Fatalf("got %v torn %d err %v", recs, torn, err)
	}
}

// fiveRecords writes a log of five records and returns its bytes and the
// records.
func fiveRecords(t *testing.T, path string) ([]byte, [][]string) {
	t.Helper()
	j, _, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var want [][]string
	for i := range 5 {
		r := []string{"F", fmt.Sprintf("75%04d", i), "ID" + strconv.Itoa(i), "1700000000"}
		want = append(want, r)
		j.Append(r...)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	j.Close()
	b, _ := os.ReadFile(path)
	return b, want
}

// Issue 16.2: a damaged record with good ones after it costs that record
// only. The original is saved as .corrupt, the log rewritten clean.
func TestDamagedRecordSkipped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acct.uidl")
	orig, want := fiveRecords(t, path)
	second := bytes.IndexByte(orig, '\n') + 1
	b := bytes.Clone(orig)
	b[second+12] ^= 0x20
	os.WriteFile(path, b, 0o600)
	j, recs, torn, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if kept := slices.Delete(slices.Clone(want), 1, 2); !reflect.DeepEqual(recs, kept) || torn != 0 {
		t.Fatalf("got %v torn %d, want %v", recs, torn, kept)
	}
	d := j.Damage()
	if d.Offset != int64(second) || d.Skipped != 1 || d.Regions != 1 || d.Saved != path+".corrupt" {
		t.Fatalf("damage %+v", d)
	}
	if saved, _ := os.ReadFile(d.Saved); !bytes.Equal(saved, b) {
		t.Fatal("the .corrupt copy is not the original")
	}
	j.Append("D", "X")
	j.Sync()
	j.Close()
	j, recs, _, err = Open(path)
	if err != nil || len(recs) != 5 || j.Damage().Skipped != 0 {
		t.Fatalf("after the repair: %v %+v %v", recs, j.Damage(), err)
	}
	j.Close()
}

// Any single flipped bit outside the last record loses exactly the record
// it hit, never more, and never yields a record that was not written.
func TestEveryFlippedBitLosesOneRecord(t *testing.T) {
	orig, want := fiveRecords(t, filepath.Join(t.TempDir(), "j"))
	last := bytes.LastIndexByte(orig[:len(orig)-1], '\n') + 1
	for pos := range last {
		for bit := range 8 {
			b := bytes.Clone(orig)
			b[pos] ^= 1 << bit
			recs, _, d := parse(b)
			hit := bytes.Count(orig[:pos], []byte{'\n'})
			if kept := slices.Delete(slices.Clone(want), hit, hit+1); !reflect.DeepEqual(recs, kept) || d.Skipped == 0 {
				t.Fatalf("byte %d bit %d: got %v (damage %+v), want %v", pos, bit, recs, d, kept)
			}
		}
	}
}

// Garbage between records is skipped, even garbage that looks like a
// record: a checksum is not enough, the fields must be what Append writes.
func TestResyncRejectsGarbage(t *testing.T) {
	orig, want := fiveRecords(t, filepath.Join(t.TempDir(), "j"))
	rng := rand.New(rand.NewPCG(1, 2))
	junk := make([]byte, 64<<10)
	for i := range junk {
		junk[i] = byte(rng.IntN(256))
		if i%97 == 0 {
			junk[i] = '\n'
		}
	}
	body := "F  x" // a checksum that fits, an empty field
	forged := fmt.Sprintf("%08x %s\n", crc32.Checksum([]byte(body), castagnoli), body)
	split := bytes.IndexByte(orig, '\n') + 1
	b := slices.Concat(orig[:split], junk, []byte(forged), orig[split:])
	recs, good, d := parse(b)
	if !reflect.DeepEqual(recs, want) || good != int64(len(b)) || d.Skipped == 0 || d.Offset != int64(split) {
		t.Fatalf("got %d records %v, good %d of %d, damage %+v", len(recs), recs, good, len(b), d)
	}
	// And at the tail, the same garbage is a torn tail: cut, not damage.
	recs, good, d = parse(slices.Concat(orig, junk, []byte(forged)))
	if !reflect.DeepEqual(recs, want) || good != int64(len(orig)) || d.Skipped != 0 {
		t.Fatalf("garbage tail: %d records, good %d, damage %+v", len(recs), good, d)
	}
}

func TestReadChangesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.uidl")
	j, _, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	j.Append("F", "6162", "ID1", "1")
	j.Append("D", "ID1")
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	j.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("deadbeef torn")
	f.Close()
	before, _ := os.ReadFile(path)
	recs, skipped, err := Read(path)
	if err != nil || len(recs) != 2 || skipped != 0 || recs[1][0] != "D" {
		t.Fatalf("Read: %v %d %v", recs, skipped, err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("Read changed the log")
	}
	if _, _, err := Read(path + ".none"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing log: %v", err)
	}
	if _, err := os.Stat(path + ".none"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Read created a log")
	}
}

// Read skips a damaged record and keeps the good ones after it, and
// changes nothing: no repair, no .corrupt copy.
func TestReadSkipsDamage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "j")
	j, _, _, _ := Open(path)
	for _, v := range []string{"A", "B", "C"} {
		j.Append("D", v)
	}
	j.Sync()
	j.Close()
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 0x20                    // damage B
	data = append(data, []byte("0badf00d D")...) // and a torn tail
	os.WriteFile(path, data, 0o600)
	recs, skipped, err := Read(path)
	if err != nil || len(recs) != 2 || recs[0][1] != "A" || recs[1][1] != "C" || skipped != 1 {
		t.Fatalf("read %q, skipped %d, %v", recs, skipped, err)
	}
	after, _ := os.ReadFile(path)
	entries, _ := os.ReadDir(dir)
	if string(after) != string(data) || len(entries) != 1 {
		t.Fatalf("Read changed the folder: %d entries, log %q", len(entries), after)
	}
}
