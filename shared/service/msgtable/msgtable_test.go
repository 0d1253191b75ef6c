package msgtable

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"example.org/popspool/shared/event"
)

// parseTable reads a MESSAGE_RESOURCE_DATA into ID -> text.
func parseTable(t *testing.T, b []byte) map[uint32]string {
	t.Helper()
	le := binary.LittleEndian
	msgs := map[uint32]string{}
	blocks := le.Uint32(b)
	for i := uint32(0); i < blocks; i++ {
		blk := b[4+12*i:]
		low, high, off := le.Uint32(blk), le.Uint32(blk[4:]), le.Uint32(blk[8:])
		for id := low; id <= high; id++ {
			n, flags := le.Uint16(b[off:]), le.Uint16(b[off+2:])
			if n%4 != 0 || flags != 0 {
				t.Fatalf("ID %d: entry length %d, flags %d", id, n, flags)
			}
			text, _, _ := strings.Cut(string(b[off+4:off+uint32(n)]), "\x00")
			msgs[id] = text
			off += uint32(n)
		}
	}
	return msgs
}

// Every event popspool defines, and 1000 for a line without one, has a
// description in the table: Event Viewer finds "%1" and shows the text.
func TestTableCoversEveryEvent(t *testing.T) {
	msgs := parseTable(t, Table())
	ids := []uint32{1000}
	for _, d := range event.All() {
		ids = append(ids, uint32(d.ID))
	}
	for _, id := range ids {
		if msgs[id] != Text {
			t.Errorf("Event ID %d: message %q, want %q (widen Low..High)", id, msgs[id], Text)
		}
	}
	if len(msgs) != High-Low+1 {
		t.Errorf("%d messages, want %d", len(msgs), High-Low+1)
	}
}

// The committed objects are what go generate writes today.
func TestSysoUpToDate(t *testing.T) {
	for _, arch := range Arches {
		want, err := Object(arch, Table())
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile("msgtable_windows_" + arch + ".syso")
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("msgtable_windows_%s.syso is stale (%v): run go generate in shared/service/msgtable", arch, err)
		}
	}
}

// The message compiler and the resource compiler of GNU binutils, given
// the same messages, write the same object as Object for amd64. Skipped
// without the MinGW binutils (make deps installs them as root), unless
// POPSPOOL_REQUIRE_REAL=1.
func TestSameAsWindmcAndWindres(t *testing.T) {
	windmc, err1 := exec.LookPath("x86_64-w64-mingw32-windmc")
	windres, err2 := exec.LookPath("x86_64-w64-mingw32-windres")
	if err1 != nil || err2 != nil {
		msg := "no MinGW windmc and windres (Debian: binutils-mingw-w64-x86-64)"
		if os.Getenv("POPSPOOL_REQUIRE_REAL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	var mc strings.Builder
	mc.WriteString("LanguageNames=(English=0x409:MSG00409)\r\n")
	for id := Low; id <= High; id++ {
		fmt.Fprintf(&mc, "MessageId=%d\r\nLanguage=English\r\n%%1\r\n.\r\n", id)
	}
	os.WriteFile(filepath.Join(dir, "popspool.mc"), []byte(mc.String()), 0o644)
	run(t, dir, windmc, "-A", "popspool.mc")
	// windres's own preprocessor is the C compiler, absent here: the
	// resource script needs none.
	rc := "LANGUAGE 0x9, 0x1\n1 MESSAGETABLE \"MSG00409.bin\"\n"
	os.WriteFile(filepath.Join(dir, "popspool.rc"), []byte(rc), 0o644)
	os.WriteFile(filepath.Join(dir, "pp"), []byte("#!/bin/sh\nfor a; do f=$a; done; cat \"$f\"\n"), 0o755)
	run(t, dir, windres, "--preprocessor=./pp", "-i", "popspool.rc", "-o", "popspool.o")
	want, _ := os.ReadFile(filepath.Join(dir, "popspool.o"))
	got, _ := Object("amd64", Table())
	if !bytes.Equal(got, want) {
		t.Errorf("Object differs from windres's (%d and %d bytes)", len(got), len(want))
	}
}

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

// A Windows program linking package service, as the daemons do, carries
// the table as its RT_MESSAGETABLE resource 1, which Event Viewer reads
// from the EventMessageFile "service install" registers: the executable.
// Only amd64, what make windows builds: each architecture costs a cold
// build of the runtime.
func TestLinkedIntoWindowsExecutable(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-links a Windows program")
	}
	exe := filepath.Join(t.TempDir(), "linkcheck.exe")
	cmd := exec.Command("go", "build", "-o", exe, "./testdata/linkcheck")
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=windows go build: %v\n%s", err, out)
	}
	got := resource(t, exe, rtMessageTable, resourceName)
	if !bytes.Equal(got, Table()) {
		t.Errorf("the executable's message table (%d bytes) is not Table()", len(got))
	}
}

// resource reads resource typ/name (first language) from a PE file.
func resource(t *testing.T, exe string, typ, name uint32) []byte {
	t.Helper()
	f, err := pe.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.Section(".rsrc")
	if s == nil {
		t.Fatal("no .rsrc section")
	}
	b, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	// find returns the offset an entry of the directory at off points to.
	find := func(off uint32, id uint32, any bool) uint32 {
		n := uint32(le.Uint16(b[off+12:])) + uint32(le.Uint16(b[off+14:]))
		for i := uint32(0); i < n; i++ {
			e := b[off+16+8*i:]
			if any || le.Uint32(e) == id {
				return le.Uint32(e[4:]) &^ 0x80000000
			}
		}
		t.Fatalf("no resource entry %d", id)
		return 0
	}
	entry := find(find(find(0, typ, false), name, false), 0, true)
	rva, size := le.Uint32(b[entry:]), le.Uint32(b[entry+4:])
	start := rva - s.VirtualAddress
	return b[start : start+size]
}
