package event

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestEveryEventIsDocumented checks docs/events.md against the catalogue:
// every event has a "### <id> <name>" section, and no section describes an
// event that does not exist.
func TestEveryEventIsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[ID]string{}
	for _, m := range regexp.MustCompile(`(?m)^### (\d+) (.+)$`).FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.Atoi(m[1])
		documented[ID(n)] = m[2]
	}
	for _, d := range All() {
		name, ok := documented[d.ID]
		if !ok {
			t.Errorf("event %d (%s) is not documented in docs/events.md", d.ID, d.Name)
		} else if name != d.Name {
			t.Errorf("event %d: docs say %q, code says %q", d.ID, name, d.Name)
		}
		delete(documented, d.ID)
	}
	for id, name := range documented {
		t.Errorf("docs/events.md describes event %d (%s), which the code does not define", id, name)
	}
}

func TestEmitSetsEventAndLevel(t *testing.T) {
	var buf writer
	l, err := NewLogger(&buf, "test", "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	Emit(&l, DiskFull).Msg("x")
	got := string(buf)
	if !regexp.MustCompile(`"level":"error".*"event":1007`).MatchString(got) || !regexp.MustCompile(`"daemon":"test"`).MatchString(got) {
		t.Fatalf("log line %s", got)
	}
}

type writer []byte

func (w *writer) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }
