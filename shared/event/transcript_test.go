package event

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestTranscript(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewLogger(&buf, "fetchd", "debug", "json")
	if err != nil {
		t.Fatal(err)
	}
	if Transcript(l) != nil {
		t.Fatal("Transcript at level debug is not nil")
	}
	l, err = NewLogger(&buf, "fetchd", "trace", "json")
	if err != nil {
		t.Fatal(err)
	}
	tr := Transcript(l.With().Str("account", "office").Logger())
	tr('C', "STAT")
	tr('S', strings.Repeat("x", 2000))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got:\n%s", buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first["level"] != "trace" || first["message"] != "transcript" || first["dir"] != "C" ||
		first["line"] != "STAT" || first["account"] != "office" || first["event"] != nil {
		t.Errorf("first line = %v", first)
	}
	if got := second["line"].(string); len(got) != MaxTranscriptLine+len("…") || second["line_len"] != 2000.0 || second["dir"] != "S" {
		t.Errorf("long line not cut: %d bytes, line_len %v", len(got), second["line_len"])
	}
}
