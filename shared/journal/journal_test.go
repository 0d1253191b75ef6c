package journal

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
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
