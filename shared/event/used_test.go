package event

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryEventIsUsed fails when an event is defined (and so documented)
// but no daemon code emits it: the guide must not explain what cannot
// happen. It reads the Go sources of the whole project.
func TestEveryEventIsUsed(t *testing.T) {
	ids, err := os.ReadFile("ids.go")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`(?m)^\s*(\w+)\s*=\s*def\((\d+),`).FindAllStringSubmatch(string(ids), -1)
	var code strings.Builder
	err = filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != "../.." && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") && !strings.HasSuffix(p, "ids.go") {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			code.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	src := code.String()
	for _, m := range names {
		if !regexp.MustCompile(`\bevent\.` + m[1] + `\b`).MatchString(src) {
			t.Errorf("event %s (%s) is defined and documented but never emitted", m[2], m[1])
		}
	}
}
