package spool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func openTest(t testing.TB, daemon string) *Spool {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "spool"), daemon, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func writePart(t *testing.T, s *Spool, body string) *Part {
	t.Helper()
	p, err := s.Create(NewID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(p, body); err != nil {
		t.Fatal(err)
	}
	if err := p.Seal(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenCreatesFoldersAndLocks(t *testing.T) {
	s := openTest(t, "fetchd")
	for _, f := range append(Folders, "tmp/fetchd", "tmp/rewrited", "tmp/deliverd") {
		fi, err := os.Stat(filepath.Join(s.Root, f))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Fatalf("folder %s: %v %v", f, fi, err)
		}
	}
	if _, err := Open(s.Root, "fetchd", zerolog.Nop()); err == nil {
		t.Fatal("second instance got the lock")
	}
	other, err := Open(s.Root, "rewrited", zerolog.Nop())
	if err != nil {
		t.Fatalf("another daemon refused: %v", err)
	}
	other.Close()
}

func TestCreateSealMove(t *testing.T) {
	s := openTest(t, "fetchd")
	p := writePart(t, s, "hello\r\n")
	dst, err := s.Move(p.Name(), Incoming, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if dst != filepath.Join(s.Dir(Incoming), p.ID+".eml") {
		t.Fatalf("dst %s", dst)
	}
	if b, _ := os.ReadFile(dst); string(b) != "hello\r\n" {
		t.Fatalf("content %q", b)
	}
	if _, err := os.Stat(p.Name()); !os.IsNotExist(err) {
		t.Fatalf("part still there: %v", err)
	}
	names, wait, err := s.Ready(Incoming)
	if err != nil || len(names) != 1 || wait != 0 {
		t.Fatalf("sealed file not ready at once: %v %v %v", names, wait, err)
	}
}

func TestMoveNeverOverwrites(t *testing.T) {
	s := openTest(t, "rewrited")
	a := writePart(t, s, "first")
	b := writePart(t, s, "second")
	if _, err := s.Move(a.Name(), Pickup, a.ID); err != nil {
		t.Fatal(err)
	}
	dst, err := s.Move(b.Name(), Pickup, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dst) != a.ID+"-1.eml" {
		t.Fatalf("collision stored as %s", dst)
	}
	first, _ := os.ReadFile(filepath.Join(s.Dir(Pickup), a.ID+".eml"))
	if string(first) != "first" {
		t.Fatalf("original overwritten: %q", first)
	}
}

func TestClaim(t *testing.T) {
	s := openTest(t, "rewrited")
	id := NewID()
	os.WriteFile(filepath.Join(s.Dir(Incoming), id+".eml"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(s.Dir(Incoming), "garbage.txt"), []byte("y"), 0o600)
	path, got, err := s.Claim(Incoming, id+".eml")
	if err != nil || got != id || path != filepath.Join(s.TmpDir(), id+".eml") {
		t.Fatalf("claim: %s %s %v", path, got, err)
	}
	if _, _, err := s.Claim(Incoming, id+".eml"); !IsGone(err) {
		t.Fatalf("second claim of the same file: %v", err)
	}
	path, got, err = s.Claim(Incoming, "garbage.txt")
	if err != nil || !ValidID(got) || filepath.Base(path) != got+".eml" {
		t.Fatalf("operator file: %s %s %v", path, got, err)
	}
}

func TestReadyIgnoresDotFilesAndUnsettledCopies(t *testing.T) {
	s := openTest(t, "rewrited")
	in := s.Dir(Incoming)
	os.WriteFile(filepath.Join(in, ".swp"), []byte("x"), 0o600)
	os.Mkdir(filepath.Join(in, "sub"), 0o700)
	os.WriteFile(filepath.Join(in, "copying.eml"), []byte("x"), 0o600)
	old := filepath.Join(in, "moved.eml")
	os.WriteFile(old, []byte("x"), 0o600)
	past := time.Now().Add(-time.Hour)
	os.Chtimes(old, past, past)
	names, wait, err := s.Ready(Incoming)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "moved.eml" {
		t.Fatalf("ready: %v", names)
	}
	if wait <= 0 || wait > Settle {
		t.Fatalf("wait %v", wait)
	}
}

func TestReplace(t *testing.T) {
	s := openTest(t, "rewrited")
	id := NewID()
	os.WriteFile(filepath.Join(s.TmpDir(), id+".eml"), []byte("old"), 0o600)
	err := s.Replace(id, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err })
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(s.TmpDir(), id+".eml")); string(b) != "new" {
		t.Fatalf("got %q", b)
	}
	eml, part, other, err := s.Leftovers()
	if err != nil || len(eml) != 1 || len(part) != 0 || len(other) != 0 {
		t.Fatalf("leftovers %v %v %v %v", eml, part, other, err)
	}
}

func TestWatchKicksOnRename(t *testing.T) {
	s := openTest(t, "rewrited")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := s.Watch(ctx, time.Hour, Incoming)
	if w.fs == nil {
		// The machine's inotify instances can run out while the suites run
		// in parallel (fs.inotify.max_user_instances, 128 by default); the
		// daemon then polls (event 1014), which other tests cover.
		t.Skip("fsnotify could not watch here; the spool falls back to polling")
	}
	p := writePart(t, s, "x")
	if _, err := s.Move(p.Name(), Incoming, p.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	w.Wait(ctx, 10*time.Second)
	if time.Since(start) > 5*time.Second {
		t.Fatal("no event for a file renamed into the folder")
	}
}

func TestClaimLeavesSameIDCopyForLater(t *testing.T) {
	s := openTest(t, "deliverd")
	id := NewID()
	os.WriteFile(filepath.Join(s.Dir(Pickup), id+".eml"), []byte("a"), 0o600)
	os.WriteFile(filepath.Join(s.Dir(Pickup), id+"-1.eml"), []byte("b"), 0o600)
	if _, got, err := s.Claim(Pickup, id+".eml"); err != nil || got != id {
		t.Fatal(got, err)
	}
	if _, _, err := s.Claim(Pickup, id+"-1.eml"); !IsGone(err) || !errors.Is(err, ErrBusy) {
		t.Fatalf("second copy: %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(Pickup), id+"-1.eml")); err != nil {
		t.Fatal("the copy was not left in place")
	}
}

// A spool folder others may write to is reported at start (1025): anyone
// who can write there can inject mail or swap files for symlinks.
func TestOpenWarnsOfWritableFolders(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows folders have ACLs, not mode bits")
	}
	root := filepath.Join(t.TempDir(), "spool")
	s, err := Open(root, "rewrited", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.Chmod(filepath.Join(root, Incoming), 0o777)
	var log bytes.Buffer
	s, err = Open(root, "rewrited", zerolog.New(&log))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := strings.Count(log.String(), `"event":1025`); n != 1 || !strings.Contains(log.String(), `"mode":"0777"`) || !strings.Contains(log.String(), filepath.Join(root, Incoming)) {
		t.Fatalf("want one 1025 naming incoming/ and 0777:\n%s", log.String())
	}
}
