package faultfs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"example.org/popspool/shared/spool"
)

func create(t *testing.T, fs *FS, name string) *os.File {
	t.Helper()
	f, err := fs.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func size(t *testing.T, f *os.File) int64 {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// A failed fsync loses what was written since the last good one, and a
// second fsync of that file is counted.
func TestFailedSyncCutsBackAndCountsRetry(t *testing.T) {
	fs := New(Fault{SyncFile, syscall.EIO}, 2)
	f := create(t, fs, "a")
	fs.Write(f, []byte("durable\n"))
	if err := fs.SyncFile(f); err != nil {
		t.Fatal(err)
	}
	fs.Write(f, []byte("lost\n"))
	err := fs.SyncFile(f)
	if !errors.Is(err, syscall.EIO) || fs.Hit() != f.Name() {
		t.Fatalf("second fsync: %v, hit %q", err, fs.Hit())
	}
	if n := size(t, f); n != int64(len("durable\n")) {
		t.Fatalf("after the failed fsync the file has %d bytes, want the 8 durable ones", n)
	}
	if fs.Retried() != 0 {
		t.Fatal("counted a retry before one happened")
	}
	fs.SyncFile(f)
	if fs.Retried() != 1 {
		t.Fatalf("retried %d, want 1", fs.Retried())
	}
}

// A failed write writes half and says ENOSPC; the count only moves for
// the chosen kind.
func TestShortWrite(t *testing.T) {
	fs := New(Fault{Write, syscall.ENOSPC}, 1)
	f := create(t, fs, "a")
	if err := fs.SyncFile(f); err != nil {
		t.Fatal(err)
	}
	n, err := fs.Write(f, []byte("0123456789"))
	if n != 5 || !errors.Is(err, syscall.ENOSPC) || !spool.IsNoSpace(err) {
		t.Fatalf("wrote %d, %v", n, err)
	}
	if n, err := fs.Write(f, []byte("x")); n != 1 || err != nil {
		t.Fatalf("the next write failed too: %d, %v", n, err)
	}
}

// A journal's file, opened outside Create, keeps what it held before its
// first write through FS.
func TestFileOpenedElsewhereKeepsItsContent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "j")
	os.WriteFile(p, []byte("old records\n"), 0o600)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs := New(Fault{SyncFile, syscall.ENOSPC}, 1)
	fs.Write(f, []byte("new record\n"))
	if err := fs.SyncFile(f); err == nil {
		t.Fatal("fsync did not fail")
	}
	if b, _ := os.ReadFile(p); string(b) != "old records\n" {
		t.Fatalf("file holds %q", b)
	}
}

// A failed folder fsync is spool's DirSyncError, which makes daemons exit.
func TestSyncDirIsDirSyncError(t *testing.T) {
	fs := New(Fault{SyncDir, syscall.EIO}, 1)
	if err := fs.SyncDir(t.TempDir()); !spool.IsDirSync(err) {
		t.Fatalf("got %v", err)
	}
	if err := fs.SyncDir(t.TempDir()); err != nil {
		t.Fatalf("second fsync of a folder: %v", err)
	}
}

// A failed group sync cuts every file of the group back to its last
// durable length (empty: never synced), and syncing one again is counted.
func TestSyncGroupCutsBack(t *testing.T) {
	dir := t.TempDir()
	fs := New(Fault{SyncGroup, syscall.EIO}, 1)
	var paths []string
	for _, n := range []string{"a", "b"} {
		f := create(t, fs, n)
		fs.Write(f, []byte("data"))
		f.Close()
		paths = append(paths, f.Name())
	}
	anchor, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer anchor.Close()
	if err := fs.SyncGroup(anchor, paths); !errors.Is(err, syscall.EIO) {
		t.Fatalf("got %v", err)
	}
	for _, p := range paths {
		if b, _ := os.ReadFile(p); len(b) != 0 {
			t.Fatalf("%s holds %q after a failed sync", p, b)
		}
	}
	if err := fs.SyncGroup(anchor, paths[:1]); err != nil || fs.Retried() != 1 {
		t.Fatalf("second sync: %v, retried %d", err, fs.Retried())
	}
}
