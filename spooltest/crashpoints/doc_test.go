package crashpoints

import (
	"os"
	"strings"
	"testing"

	"example.org/popspool/shared/crash"
)

// TestEveryPointIsInTheCrashTable keeps docs/crashes.md and the code in step.
func TestEveryPointIsInTheCrashTable(t *testing.T) {
	b, err := os.ReadFile("../../docs/crashes.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range crash.Points {
		if !strings.Contains(string(b), "| `"+p+"` |") {
			t.Errorf("crash point %s has no row in docs/crashes.md", p)
		}
	}
}
