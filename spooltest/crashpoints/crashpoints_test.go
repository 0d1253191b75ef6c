// Package crashpoints is the crash-point matrix: for every named point of
// the handoff protocol (shared/crash.Points) and several k, it runs the
// real daemons built with -tags crashpoints, kills the daemon at the k-th
// pass of the point, restarts it clean, lets the flow settle, and checks
// that every message arrived exactly once and nothing was left behind.
package crashpoints

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"example.org/popspool/shared/crash"
	"example.org/popspool/spooltest/harness"
)

var bins string

func TestMain(m *testing.M) {
	if runtime.GOOS != "linux" {
		fmt.Println("crashpoints: skipped, needs Linux (SIGKILL to self)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "popspool-crash-bin-")
	if err == nil {
		bins, err = harness.Build(dir, "crashpoints")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ks are the hits at which each point kills: the first message, one in
// the middle of a batch, one near the end.
var ks = []int{1, 5, 17}

const messages = 24

func TestCrashPointMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("crash-point matrix skipped in -short mode")
	}
	runs, lost, dup, leftover := 0, 0, 0, 0
	var unreached []string
	for _, point := range crash.Points {
		for _, k := range ks {
			r := runPoint(t, point, k)
			runs++
			lost += r.lost
			dup += r.dup
			leftover += r.leftover
			if !r.killed && k == 1 {
				unreached = append(unreached, point)
			}
		}
	}
	sort.Strings(unreached)
	t.Logf("crashpoints: points=%d runs=%d lost=%d duplicated=%d leftover=%d unreached=%v", len(crash.Points), runs, lost, dup, leftover, unreached)
	if lost+dup+leftover > 0 || len(unreached) > 0 {
		t.Fatalf("crash-point matrix failed")
	}
}

type result struct {
	killed              bool
	lost, dup, leftover int
}

func runPoint(t *testing.T, point string, k int) result {
	daemon, _, _ := strings.Cut(point, ".")
	f, err := harness.New(t.TempDir(), bins, harness.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := harness.Generate(f.Box, messages, int64(k))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range harness.Daemons {
		var env []string
		if d == daemon {
			env = []string{fmt.Sprintf("POPSPOOL_CRASH=%s:%d", point, k)}
		}
		if err := f.StartEnv(d, env); err != nil {
			t.Fatal(err)
		}
	}
	var r result
	settled := harness.WaitFor(60*time.Second, func() bool {
		if f.Exited(daemon) && !r.killed {
			r.killed = true
			if err := f.Start(daemon); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := f.Delivered()
		return len(got) >= len(want) && f.Settled()
	})
	same, missing, dup, strange, err := f.Check(want)
	if err != nil {
		t.Fatal(err)
	}
	r.lost, r.dup = missing, dup+strange
	files := f.SpoolFiles()
	for _, n := range files {
		r.leftover += n
	}
	if !settled || same != len(want) || r.lost+r.dup+r.leftover > 0 {
		b, _ := os.ReadFile(filepath.Join(f.Logs, daemon+".log"))
		t.Errorf("%s:%d: killed=%v settled=%v identical=%d lost=%d dup=%d leftover=%v\n%s", point, k, r.killed, settled, same, r.lost, r.dup, files, tail(b))
	}
	return r
}

func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}
