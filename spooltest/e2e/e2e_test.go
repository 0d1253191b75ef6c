// Package e2e runs the three daemons as separate processes on a temporary
// spool against the spooltest POP3 server and checks what arrives in the
// Maildir: every message exactly once, byte-identical.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/samples"
)

var bins string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "popspool-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins, err = harness.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newFlow(t *testing.T) *harness.Flow {
	t.Helper()
	f, err := harness.New(t.TempDir(), bins, harness.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range harness.Daemons {
				b, _ := os.ReadFile(filepath.Join(f.Logs, d+".log"))
				t.Logf("%s log (last 3000 bytes):\n%s", d, tail(b, 3000))
			}
		}
	})
	return f
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func sampleBytes(t *testing.T, f *harness.Flow) [][]byte {
	t.Helper()
	names, err := samples.WriteTo(f.Box)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, n := range names {
		b, _ := samples.Read(n)
		out = append(out, b)
	}
	return out
}

func startAll(t *testing.T, f *harness.Flow) {
	t.Helper()
	for _, d := range harness.Daemons {
		if err := f.Start(d); err != nil {
			t.Fatal(err)
		}
	}
}

func checkExactlyOnce(t *testing.T, f *harness.Flow, want [][]byte) {
	t.Helper()
	same, missing, dup, strange, err := f.Check(want)
	if err != nil {
		t.Fatal(err)
	}
	if same != len(want) || missing+dup+strange > 0 {
		t.Fatalf("Maildir: %d of %d byte-identical, %d missing, %d duplicated, %d unexpected", same, len(want), missing, dup, strange)
	}
}

func waitDelivered(t *testing.T, f *harness.Flow, n int, timeout time.Duration) {
	t.Helper()
	ok := harness.WaitFor(timeout, func() bool {
		got, _ := f.Delivered()
		return f.Settled() && len(got) >= n
	})
	if !ok {
		got, _ := f.Delivered()
		t.Fatalf("flow did not settle in %v: %d delivered, spool %v, server holds %d", timeout, len(got), f.SpoolFiles(), f.Server.Stats().Left)
	}
}

func TestSamplesArriveExactlyOnce(t *testing.T) {
	f := newFlow(t)
	want := sampleBytes(t, f)
	startAll(t, f)
	waitDelivered(t, f, len(want), 60*time.Second)
	for _, d := range harness.Daemons {
		if err := f.Stop(d, 10*time.Second); err != nil {
			t.Errorf("stop %s: %v", d, err)
		}
	}
	checkExactlyOnce(t, f, want)
	if n := f.SpoolFiles(); len(n) != 0 {
		t.Fatalf("spool not empty: %v", n)
	}
}

func TestGarbageGoesToFailedAndOthersFlow(t *testing.T) {
	f := newFlow(t)
	startAll(t, f)
	in := filepath.Join(f.Spool, "incoming")
	harness.WaitFor(10*time.Second, func() bool { _, err := os.Stat(in); return err == nil })
	os.WriteFile(filepath.Join(in, "junk.dat"), []byte("\x00\x01garbage\n\xff"), 0o600)
	os.WriteFile(filepath.Join(in, ".editor-swap"), []byte("ignored"), 0o600)
	want := sampleBytes(t, f)
	waitDelivered(t, f, len(want), 60*time.Second)
	checkExactlyOnce(t, f, want)
	ok := harness.WaitFor(10*time.Second, func() bool { return f.SpoolFiles()["failed"] == 1 })
	if !ok {
		t.Fatalf("failed/ holds %d files", f.SpoolFiles()["failed"])
	}
	entries, _ := os.ReadDir(filepath.Join(f.Spool, "failed"))
	b, _ := os.ReadFile(filepath.Join(f.Spool, "failed", entries[0].Name()))
	if !strings.HasPrefix(string(b), "X-Popspool-Failed: 3003 unreadable header") || !strings.Contains(string(b), "\x00\x01garbage\n\xff") {
		t.Fatalf("failed file: %q", b)
	}
	if _, err := os.Stat(filepath.Join(in, ".editor-swap")); err != nil {
		t.Fatal("dot-file was touched:", err)
	}
}

func TestOnceModeRunsEachStage(t *testing.T) {
	f := newFlow(t)
	want := sampleBytes(t, f)
	for _, d := range harness.Daemons {
		if err := f.Run(d, 60*time.Second); err != nil {
			t.Fatalf("%s -once: %v", d, err)
		}
	}
	checkExactlyOnce(t, f, want)
	if n := f.SpoolFiles(); len(n) != 0 {
		t.Fatalf("spool not empty after -once runs: %v", n)
	}
}

func TestBadConfigNamesFileLineKey(t *testing.T) {
	f := newFlow(t)
	b, _ := os.ReadFile(f.Config)
	os.WriteFile(f.Config, []byte(strings.Replace(string(b), "[deliver]", "[deliver]\ntarget_typo = 1", 1)), 0o600)
	err := f.Run("deliverd", 10*time.Second)
	log, _ := os.ReadFile(filepath.Join(f.Logs, "deliverd.log"))
	if err == nil || !strings.Contains(string(log), f.Config+":") || !strings.Contains(string(log), "deliver.target_typo: unknown key") {
		t.Fatalf("exit %v, log %s", err, log)
	}
}
