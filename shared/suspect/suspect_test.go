package suspect

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func open(t *testing.T, path string, log *bytes.Buffer) *Book {
	t.Helper()
	l := zerolog.New(log)
	b, err := Open(path, &l)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A death is counted only for a file left alone and not cleared; deaths
// carry over compaction; a clear forgets them.
func TestDeathsCountedAcrossStarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rewrited.suspects")
	var log bytes.Buffer
	b := open(t, path, &log)
	if err := b.Alone("A1"); err != nil {
		t.Fatal(err)
	}
	b.Alone("B2")
	b.Clear("B2") // handled to the end: no death
	b.Close()     // "dies" with A1 in hand
	for want := 1; want <= Limit; want++ {
		b = open(t, path, &log)
		if got := len(b.Deaths("A1")); got != want {
			t.Fatalf("start %d: %d deaths against A1, want %d", want, got, want)
		}
		if len(b.Deaths("B2")) != 0 {
			t.Fatal("a cleared file was counted")
		}
		if want < Limit {
			b.Alone("A1")
		}
		b.Close()
	}
	if n := strings.Count(log.String(), `"event":1024`); n != Limit {
		t.Errorf("%d events 1024, want %d:\n%s", n, Limit, log.String())
	}
	b = open(t, path, &log)
	if s := b.Suspects(); len(s) != 1 || s[0] != "A1" {
		t.Fatalf("suspects %v", s)
	}
	if r := Reason("rewrited", b.Deaths("A1")); !strings.Contains(r, "rewrited died 3 times") || !strings.Contains(r, time.Now().UTC().Format("2006-01-02")) {
		t.Errorf("reason %q", r)
	}
	b.Clear("A1")
	b.Close()
	b = open(t, path, &log)
	defer b.Close()
	if len(b.Deaths("A1")) != 0 {
		t.Fatal("cleared deaths came back")
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Errorf("the book holds %d bytes after every suspect was cleared", fi.Size())
	}
}

// The file most often seen dying comes first.
func TestSuspectsMostDeathsFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.suspects")
	var log bytes.Buffer
	b := open(t, path, &log)
	b.Alone("X")
	b.Close()
	b = open(t, path, &log)
	b.Alone("Y")
	b.Close()
	b = open(t, path, &log)
	b.Alone("Y")
	b.Close()
	b = open(t, path, &log)
	defer b.Close()
	if s := b.Suspects(); len(s) != 2 || s[0] != "Y" || s[1] != "X" {
		t.Fatalf("suspects %v, want [Y X]", s)
	}
}
