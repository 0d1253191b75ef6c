package chaos

import (
	"runtime"
	"strings"
	"testing"
)

func TestEnvironmentNamesTheFilesystem(t *testing.T) {
	e := Environment(t.TempDir())
	if runtime.GOOS == "linux" && strings.Contains(e, `fs="unknown"`) {
		t.Fatalf("no filesystem found: %s", e)
	}
	t.Log(e)
}
