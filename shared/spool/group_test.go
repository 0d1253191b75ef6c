package spool

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGroupSyncsAndMoves writes three parts in a group, body copied from
// a file, syncs them together and moves them: each arrives whole, with
// its mtime set back so the next daemon takes it at once.
func TestGroupSyncsAndMoves(t *testing.T) {
	s := openTest(t, "rewrited")
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte("ENVELOPE\r\nSubject: x\r\n\r\nbody\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := s.NewGroup()
	var parts []*Part
	for range 3 {
		p, err := g.Create(NewID())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(p, "X-Sender: a@b\r\n")
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		f.Seek(int64(len("ENVELOPE\r\n")), io.SeekStart)
		if n, err := p.CopyFrom(f); err != nil || n != 20 {
			t.Fatalf("copied %d: %v", n, err)
		}
		f.Close()
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	if g.Len() != 3 {
		t.Fatalf("group holds %d parts", g.Len())
	}
	if err := g.Sync(); err != nil {
		t.Fatal(err)
	}
	b := s.NewBatch()
	for _, p := range parts {
		if _, err := b.Move(p.Name(), Pickup, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	names, _, err := s.Ready(Pickup)
	if err != nil || len(names) != 3 {
		t.Fatalf("ready in pickup/: %v %v", names, err)
	}
	for _, n := range names {
		got, _ := os.ReadFile(filepath.Join(s.Dir(Pickup), n))
		if string(got) != "X-Sender: a@b\r\nSubject: x\r\n\r\nbody\r\n" {
			t.Fatalf("%s holds %q", n, got)
		}
	}
	if g.Len() != 0 || g.anchor != nil {
		t.Fatal("the group kept its parts or anchor after Sync")
	}
}

// TestPartCloseOutsideGroup: a part made by Spool.Create is sealed, not
// closed unsynced.
func TestPartCloseOutsideGroup(t *testing.T) {
	s := openTest(t, "fetchd")
	p, err := s.Create(NewID())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err == nil || !strings.Contains(err.Error(), "not in a group") {
		t.Fatalf("Close outside a group: %v", err)
	}
}

func TestSettledAfterClose(t *testing.T) {
	s := openTest(t, "fetchd")
	g := s.NewGroup()
	p, err := g.Create(NewID())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p.Name())
	if err != nil || time.Since(fi.ModTime()) < Settle {
		t.Fatalf("mtime %v: %v", fi.ModTime(), err)
	}
	g.Release()
}
