package maildir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.org/popspool/shared/spool"
)

func TestDeliverOnceEvenWhenRepeated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "alice")
	id := spool.NewID()
	dup, err := Deliver(dir, id, "Delivered-To: a\r\n", strings.NewReader("body\r\n"), false, true)
	if err != nil || dup {
		t.Fatal(dup, err)
	}
	dup, err = Deliver(dir, id, "", strings.NewReader("body\r\n"), false, true)
	if err != nil || !dup {
		t.Fatalf("second delivery: dup=%v %v", dup, err)
	}
	// A mail reader moves it to cur/ with flags; a retry still sees it.
	os.Rename(filepath.Join(dir, "new", Name(id)), filepath.Join(dir, "cur", Name(id)+":2,S"))
	dup, err = Deliver(dir, id, "", strings.NewReader("body\r\n"), true, true)
	if err != nil || !dup {
		t.Fatalf("retry after reader moved it: dup=%v %v", dup, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "cur", Name(id)+":2,S"))
	if string(b) != "Delivered-To: a\r\nbody\r\n" {
		t.Fatalf("content %q", b)
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Fatalf("tmp/ not empty: %v", tmp)
	}
}
