package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"example.org/popspool/spooltest/harness"
)

// Line is one JSON log line of a daemon (zerolog).
type Line struct {
	Level   string `json:"level"`
	Event   int    `json:"event"`
	Message string `json:"message"`
	Error   string `json:"error"`
	ID      string `json:"id"`
	File    string `json:"file"`
	Raw     string `json:"-"`
}

// Step names what a line says the daemon was doing: "2002 fetched", or
// the message alone for lines without an event.
func (l Line) Step() string {
	if l.Event != 0 {
		return fmt.Sprintf("%d %s", l.Event, l.Message)
	}
	if l.Message == "" {
		return "(not JSON) " + truncate(l.Raw, 60)
	}
	return l.Message
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// LastLine returns the last complete line of the log at path written at
// or after offset from; ok is false if there is none.
func LastLine(path string, from int64) (l Line, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return l, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() <= from {
		return l, false
	}
	start := max(from, st.Size()-64<<10)
	b := make([]byte, st.Size()-start)
	if _, err := f.ReadAt(b, start); err != nil && err != io.EOF {
		return l, false
	}
	b = bytes.TrimRight(b, "\n")
	if len(b) == 0 {
		return l, false
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return parseLine(b), true
}

func parseLine(b []byte) Line {
	var l Line
	if json.Unmarshal(b, &l) != nil {
		l = Line{}
	}
	l.Raw = string(b)
	return l
}

// ScanLog calls fn for every line of the log at path from offset from on,
// up to offset to (to < 0: to the end). A missing log has no lines.
func ScanLog(path string, from, to int64, fn func(Line)) error {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if to < 0 {
		to = 1 << 62
	}
	sc := bufio.NewScanner(io.NewSectionReader(f, from, to-from))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		fn(parseLine(sc.Bytes()))
	}
	return sc.Err()
}

// Size returns the size of the file at path, 0 if it does not exist.
func Size(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// Fail fails t with the violations of a run, at most 50 of them, and the
// last 3000 bytes of each daemon's log in logs; summary ends the report
// (the seed and how to replay). It returns at once when there are none.
func Fail(t *testing.T, problems []string, logs, summary string) {
	t.Helper()
	if len(problems) == 0 {
		return
	}
	for i, p := range problems {
		if i == 50 {
			t.Errorf("... and %d more", len(problems)-50)
			break
		}
		t.Error(p)
	}
	for _, d := range harness.Daemons {
		b, _ := os.ReadFile(filepath.Join(logs, d+".log"))
		t.Logf("%s log (last 3000 bytes):\n%s", d, b[max(0, len(b)-3000):])
	}
	t.Fatalf("%d violations (%s)", len(problems), summary)
}
