package chaos

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.org/popspool/spooltest/smtpsink"
)

func record(fields ...string) string {
	body := strings.Join(fields, " ")
	return fmt.Sprintf("%08x %s\n", crc32.Checksum([]byte(body), castagnoli), body)
}

func TestWindowsSurviveCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deliverd.ledger")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var w Windows
	write(record("S", "A", "1") + record("W", "A"))
	w.Snapshot(path)
	write(record("S", "A", "1") + record("W", "A") + record("S", "A", "2") + record("W", "A") + "torn")
	w.Snapshot(path)
	write(record("S", "A", "2") + record("F", "A", "compacted")) // compacted: the Ws are gone
	w.Snapshot(path)
	write(record("S", "A", "2") + record("F", "A", "compacted") + record("W", "B"))
	w.Snapshot(path)
	if c := w.Counts(); c["A"] != 2 || c["B"] != 1 || w.Total() != 3 {
		t.Fatalf("counts %v", c)
	}
	_, _, torn, _ := ReadJournal(path)
	if torn != 0 {
		t.Fatalf("torn %d", torn)
	}
}

func TestVerify(t *testing.T) {
	spool := t.TempDir()
	for _, d := range []string{"incoming", "pickup", "deferred", "failed", "badmail", "state", "tmp/fetchd", "tmp/rewrited", "tmp/deliverd"} {
		os.MkdirAll(filepath.Join(spool, d), 0o700)
	}
	logs := t.TempDir()
	os.WriteFile(filepath.Join(logs, "fetchd.log"), []byte(`{"message":"login with s3cret"}`+"\n"), 0o600)
	msg := func(i int) []byte { return []byte(fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)) }
	trace := func(id string, b []byte) []byte {
		return append([]byte("Received: from x\r\n\tby y (popspool fetchd; account demo; uidl u)\r\n\twith POP3 id "+id+";\r\n\tdate\r\nX-Popspool-Account: demo\r\n"), b...)
	}
	const idA, idB, idC = "01KAAAAAAAAAAAAAAAAAAAAAAA", "01KBBBBBBBBBBBBBBBBBBBBBBB", "01KCCCCCCCCCCCCCCCCCCCCCCC"
	garbage := []byte("GARBAGE\r\n\x00")
	os.WriteFile(filepath.Join(spool, "failed", idC+".eml"), append([]byte("X-Popspool-Failed: 3003 no header\r\n"), garbage...), 0o600)
	os.WriteFile(filepath.Join(spool, "failed", "01KDDDDDDDDDDDDDDDDDDDDDDD.eml"), append([]byte("X-Popspool-Failed: 3006 stuck\r\n"), trace("x", msg(4))...), 0o600)
	os.WriteFile(filepath.Join(spool, "pickup", "left.eml"), nil, 0o600)
	os.WriteFile(filepath.Join(spool, "state", "deliverd.ledger"), []byte(record("D", idA)+"torn"), 0o600)
	in := Input{
		Account: "demo",
		Want:    []Want{{Name: "m1", Wire: msg(1)}, {Name: "m2", Wire: msg(2)}, {Name: "m3", Wire: msg(3)}, {Name: "m4", Wire: msg(4)}, {Name: "c1", Wire: msg(5), Copied: true}},
		Garbage: [][]byte{garbage},
		Delivered: []smtpsink.Message{
			{Data: trace(idA, msg(1))}, {Data: trace(idA, msg(1))}, // covered by a W
			{Data: trace(idB, msg(2))}, {Data: trace(idC, msg(2))}, // fetched twice
			{Data: msg(5)}, {Data: msg(5)}, // copied, no W
			{Data: trace(idA, msg(9))}, // unwanted
		},
		Spool: spool, Logs: logs, Windows: map[string]int{idA: 1},
		Secrets: []string{"s3cret"},
	}
	r := Verify(in)
	if r.Lost != 1 || r.Failed != 1 || r.Duplicated != 3 || r.Strange != 1 || r.Leftover != 1 || r.Delivered != 3 {
		t.Fatalf("%+v", r)
	}
	want := []string{"lost: m3", "fetched more than once", "copied file c1 delivered 2 times", "never wanted", "left over: pickup/left.eml", "does not parse to its end", `secret "s3cret"`, "good message quarantined: m4 is in failed/01KDDDDDDDDDDDDDDDDDDDDDDD.eml (X-Popspool-Failed: 3006 stuck)"}
	all := strings.Join(r.Problems, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no problem %q in:\n%s", w, all)
		}
	}
	if len(r.Problems) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(r.Problems), len(want), all)
	}
}
