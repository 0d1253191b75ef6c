// Package wine runs popspool's Windows binaries under Wine (Debian's
// wine64): the demo flow with -once runs, then the three daemons as
// services of Wine's Service Control Manager. What this does and does not
// prove is in docs/operations.md §3 ("Tried under Wine"). `make
// wine-test` installs Wine and runs it; without Wine the test is skipped.
package wine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/samples"
)

var daemons = []string{"fetchd", "rewrited", "deliverd"}

// wine is a Wine prefix with popspool's Windows binaries.
type wine struct {
	t      *testing.T
	wine64 string
	prefix string
	bins   string
}

func setup(t *testing.T) *wine {
	w := &wine{t: t, wine64: find("wine64", "/usr/lib/wine/wine64"), prefix: filepath.Join(t.TempDir(), "prefix"), bins: t.TempDir()}
	gcc := find("x86_64-w64-mingw32-gcc", "")
	if w.wine64 == "" || gcc == "" {
		msg := "Wine (wine64) or MinGW (gcc-mingw-w64-x86-64) is not installed: make wine-test installs them"
		if os.Getenv("POPSPOOL_REQUIRE_WINE") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	root, err := harness.Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range daemons {
		cmd := exec.Command("go", "build", "-o", filepath.Join(w.bins, d+".exe"), ".")
		cmd.Dir = filepath.Join(root, d)
		cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s.exe: %v\n%s", d, err, out)
		}
	}
	w.boot()
	dll := filepath.Join(w.prefix, "drive_c", "windows", "system32", "bcryptprimitives.dll")
	if out, err := exec.Command(gcc, "-shared", "-O2", "-o", dll, "testdata/bcryptprimitives.c", "-ladvapi32").CombinedOutput(); err != nil {
		t.Fatalf("the bcryptprimitives.dll shim: %v\n%s", err, out)
	}
	if out := w.run(time.Minute, "fetchd", "-version"); !strings.Contains(out, "windows/amd64") {
		t.Fatalf("fetchd.exe -version: %s", out)
	}
	t.Cleanup(func() {
		kill := exec.Command(find("wineserver", "/usr/lib/wine/wineserver"), "-k")
		kill.Env = append(os.Environ(), "WINEPREFIX="+w.prefix)
		kill.Run()
	})
	return w
}

// boot makes the prefix (by running a program in it, which fails for
// want of bcryptprimitives.dll: the prefix is made first) and starts its
// wineserver and services.exe with their standard error in eventlog.txt: Wine's Event Log is a stub that
// prints each entry there (channel eventlog), and the services started
// later inherit it.
func (w *wine) boot() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := os.MkdirAll(w.prefix, 0o700); err != nil {
		w.t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(filepath.Dir(w.prefix), "eventlog.txt"))
	if err != nil {
		w.t.Fatal(err)
	}
	defer log.Close()
	// Wine's wineserver, and with it services.exe and every service,
	// exits a few seconds after the last Windows program: a service
	// would live only while some command runs. -p keeps it up until
	// the cleanup's wineserver -k.
	persist := exec.CommandContext(ctx, find("wineserver", "/usr/lib/wine/wineserver"), "-p")
	persist.Env = append(os.Environ(), "WINEPREFIX="+w.prefix)
	if err := persist.Run(); err != nil { // no pipes: the server it leaves would hold them open
		w.t.Fatalf("wineserver -p: %v", err)
	}
	cmd := exec.CommandContext(ctx, w.wine64, filepath.Join(w.bins, "fetchd.exe"), "-version")
	cmd.Env = append(os.Environ(), "WINEPREFIX="+w.prefix, "WINEDEBUG=-all,err+eventlog,warn+eventlog,trace+eventlog", "WINEDLLOVERRIDES=mscoree,mshtml=")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Run() // fails: no bcryptprimitives.dll yet
}

// eventLog is what Wine printed of the Event Log entries so far.
func (w *wine) eventLog() string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(w.prefix), "eventlog.txt"))
	return string(b)
}

func find(name, fallback string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat(fallback); fallback != "" && err == nil {
		return fallback
	}
	return ""
}

// run runs a Windows program in the prefix and returns its output; a
// failure fails the test.
func (w *wine) run(timeout time.Duration, prog string, args ...string) string {
	w.t.Helper()
	out, err := w.try(timeout, prog, args...)
	if err != nil {
		w.t.Fatalf("%s %q: %v\n%s", prog, args, err, out)
	}
	return out
}

func (w *wine) try(timeout time.Duration, prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if exe := filepath.Join(w.bins, prog+".exe"); fileExists(exe) {
		prog = exe
	}
	cmd := exec.CommandContext(ctx, w.wine64, append([]string{prog}, args...)...)
	cmd.Env = append(os.Environ(), "WINEPREFIX="+w.prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// winPath is path as a Windows program under Wine names it: drive Z: is
// the Linux root.
func winPath(path string) string { return `Z:` + strings.ReplaceAll(path, "/", `\`) }

// windowsConfig rewrites the flow's config with Windows paths for the
// spool, the password file and the Maildirs, as an installer on Windows
// writes them.
func windowsConfig(t *testing.T, f *harness.Flow) string {
	b, err := os.ReadFile(f.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, key := range []string{"spool", "password_file"} {
		lines := strings.Split(cfg, "\n")
		for i, l := range lines {
			if v, ok := strings.CutPrefix(l, key+" = \""); ok {
				lines[i] = key + " = '" + winPath(strings.TrimSuffix(v, "\"")) + "'"
			}
		}
		cfg = strings.Join(lines, "\n")
	}
	// maildir:///tmp/... names no drive; a service's current drive is C:
	cfg = strings.Replace(cfg, `target = "maildir:///`, `target = "maildir:///Z:/`, 1)
	if err := os.WriteFile(f.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return winPath(f.Config)
}

// The demo flow with -once runs of the Windows binaries, then the three as
// services: install, start, mail flows while they run, status, stop,
// uninstall. Every message arrives exactly once, byte for byte.
func TestWindowsBinariesUnderWine(t *testing.T) {
	w := setup(t)
	dir := t.TempDir()
	if keep := os.Getenv("POPSPOOL_WINE_DIR"); keep != "" {
		dir = keep // kept for a look after the run
	}
	f, err := harness.New(dir, w.bins, harness.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := windowsConfig(t, f)
	names, err := samples.WriteTo(f.Box)
	if err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for _, n := range names {
		b, _ := samples.Read(n)
		want = append(want, b)
	}
	start := time.Now()
	for _, d := range daemons {
		out, err := w.try(2*time.Minute, d, "-once", "-config", cfg)
		if err != nil && d != "rewrited" { // rewrited -once exits 1 for the sample that cannot be routed
			t.Fatalf("%s.exe -once: %v\n%s", d, err, out)
		}
	}
	check(t, f, want)
	t.Logf("-once runs under Wine: %d messages in %v", len(want), time.Since(start).Round(time.Millisecond))

	for _, d := range daemons {
		if out := w.run(time.Minute, d, "service", "install", "-config", cfg); !strings.Contains(out, "installed popspool-"+d) {
			t.Fatalf("%s service install: %s", d, out)
		}
		if out, err := w.try(time.Minute, d, "service", "start"); err != nil {
			q, _ := w.try(30*time.Second, "sc", "query", "popspool-"+d)
			t.Fatalf("%s service start: %v\n%s\nsc query:\n%s\nEvent Log:\n%s", d, err, out, q, w.eventLog())
		}
	}
	more, err := harness.Generate(f.Box, 20, 7)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, more...)
	if !harness.WaitFor(2*time.Minute, func() bool { got, _ := f.Delivered(); return len(got) >= len(want) }) {
		out, _ := w.try(time.Minute, "fetchd", "status", "-config", cfg)
		for _, d := range daemons {
			q, _ := w.try(30*time.Second, "sc", "query", "popspool-"+d)
			out += q
		}
		t.Fatalf("the services did not deliver: spool %v, server holds %d\n%s\nEvent Log:\n%s", f.SpoolFiles(), f.Server.Stats().Left, out, w.eventLog())
	}
	if out, _ := w.try(time.Minute, "fetchd", "status", "-config", cfg); !strings.Contains(out, "running") {
		t.Errorf("fetchd status under the services:\n%s", out)
	}
	for _, d := range daemons {
		w.run(time.Minute, d, "service", "stop")
		if st := state(t, f, d); st != "stopped" {
			t.Errorf("%s status file says %q after service stop", d, st)
		}
		w.run(time.Minute, d, "service", "uninstall")
	}
	if out, _ := w.try(30*time.Second, "sc", "query", "popspool-fetchd"); !strings.Contains(out, "1060") && strings.Contains(out, "RUNNING") {
		t.Errorf("service still there after uninstall:\n%s", out)
	}
	check(t, f, want)
}

func check(t *testing.T, f *harness.Flow, want [][]byte) {
	t.Helper()
	same, missing, dup, strange, err := f.Check(want)
	if err != nil || same != len(want) || missing+dup+strange > 0 {
		t.Fatalf("Maildir: %d of %d byte-identical, %d missing, %d duplicated, %d unexpected (%v); spool %v",
			same, len(want), missing, dup, strange, err, f.SpoolFiles())
	}
}

// state is the state field of a daemon's status file.
func state(t *testing.T, f *harness.Flow, d string) string {
	b, err := os.ReadFile(filepath.Join(f.Spool, "status", d+".json"))
	if err != nil {
		return fmt.Sprint(err)
	}
	var st struct{ State string }
	json.Unmarshal(b, &st)
	return st.State
}
