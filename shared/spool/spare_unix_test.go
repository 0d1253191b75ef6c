//go:build unix

package spool

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// claimedFile writes a claimed original into tmp/ as a daemon's claim
// leaves it.
func claimedFile(t *testing.T, s *Spool, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(s.TmpDir(), NewID()+".eml")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

// groupPart writes content as a part of a new group and closes it.
func groupPart(t *testing.T, s *Spool, content string) *Part {
	t.Helper()
	p, err := s.NewGroup().Create(NewID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(p, content); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// A retired original becomes a spare only once tmp/ is fsynced after
// it; a part written over a longer spare is cut to its own length.
func TestSpareWrittenOverOnlyWhenDurable(t *testing.T) {
	s := openTest(t, "rewrited")
	orig := claimedFile(t, s, strings.Repeat("old message ", 100), 0o600)
	if err := s.Retire(orig); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(orig); !os.IsNotExist(err) || s.Spares() != 1 {
		t.Fatalf("original still there (%v) or %d spares, want renamed to one spare", err, s.Spares())
	}
	if p := groupPart(t, s, "early"); strings.HasSuffix(p.Name(), ".spare") {
		t.Fatalf("part %s written over a spare before tmp/ was fsynced", p.Name())
	}
	if err := s.SyncTmp(); err != nil {
		t.Fatal(err)
	}
	p := groupPart(t, s, "new content")
	if !strings.HasSuffix(p.Name(), ".spare") || s.Spares() != 0 {
		t.Fatalf("part %s, %d spares left: want the spare written over", p.Name(), s.Spares())
	}
	if b, _ := os.ReadFile(p.Name()); string(b) != "new content" {
		t.Fatalf("part holds %q", b)
	}
}

// Only a file that is the spool's alone is kept: not a hard link (the
// other name would see the next message), not a file of another mode
// (an operator's copy, readable by others). Those are removed as before.
func TestSpareOnlyOfTheSpoolsOwnFiles(t *testing.T) {
	s := openTest(t, "rewrited")
	linked := claimedFile(t, s, "linked", 0o600)
	other := filepath.Join(t.TempDir(), "operator-copy.eml")
	if err := os.Link(linked, other); err != nil {
		t.Fatal(err)
	}
	open := claimedFile(t, s, "readable by all", 0o644)
	for _, p := range []string{linked, open} {
		if err := s.Retire(p); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s not removed", p)
		}
	}
	if s.Spares() != 0 {
		t.Fatalf("%d spares, want none", s.Spares())
	}
	if b, err := os.ReadFile(other); err != nil || string(b) != "linked" {
		t.Fatalf("the other link holds %q (%v)", b, err)
	}
}

// DropSpares removes them, and the limit on their number holds.
func TestDropSpares(t *testing.T) {
	s := openTest(t, "rewrited")
	for range maxSpares + 2 {
		if err := s.Retire(claimedFile(t, s, "x", 0o600)); err != nil {
			t.Fatal(err)
		}
	}
	if s.Spares() != maxSpares {
		t.Fatalf("%d spares, want the limit %d", s.Spares(), maxSpares)
	}
	s.DropSpares()
	for _, pattern := range []string{"*.spare", "*.eml"} {
		if left, _ := filepath.Glob(filepath.Join(s.TmpDir(), pattern)); len(left) != 0 {
			t.Fatalf("tmp/ holds %v", left)
		}
	}
}
