package service

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/notify/notifytest"
	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/status"
)

// syncBuf is a log output the test reads while the daemon writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuf) wait(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", want, s.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func writeConfig(t *testing.T, path, spoolDir, extra string) {
	t.Helper()
	text := fmt.Sprintf("spool = %q\nrescan = \"1s\"\n%s", spoolDir, extra)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// fakeDaemon opens the spool, logs what fetchd would, says it is ready
// and waits; each generation's config lands on gens.
func fakeDaemon(gens chan<- *Env) func(context.Context, *Env) error {
	return func(ctx context.Context, env *Env) error {
		s, err := spool.Open(env.Config.Spool, env.Name, env.Log)
		if err != nil {
			return err
		}
		defer s.Close()
		event.Emit(&env.Log, event.FetchSession).Str("account", "office").Bool("ok", true).Int("fetched", 3).Msg("polled")
		event.Emit(&env.Log, event.LoginFailed).Str("account", "shop").Str("error", "-ERR [AUTH] no").Msg("login refused")
		event.Emit(&env.Log, event.Fetched).Int64("size", 1234).Float64("elapsed_ms", 250).Msg("fetched")
		env.Ready()
		gens <- env
		<-ctx.Done()
		return ctx.Err()
	}
}

type running struct {
	ctl  chan control
	code chan int
	log  *syncBuf
	gens chan *Env
}

func start(t *testing.T, name, cfg string) *running {
	t.Helper()
	old := ScanEvery
	ScanEvery = 50 * time.Millisecond
	t.Cleanup(func() { ScanEvery = old })
	r := &running{ctl: make(chan control, 4), code: make(chan int, 1), log: &syncBuf{}, gens: make(chan *Env, 4)}
	env, err := load(name, cfg, false, nil, r.log)
	if err != nil {
		t.Fatal(err)
	}
	go func() { r.code <- newSupervisor(name, fakeDaemon(r.gens), r.log, r.ctl).serve(env) }()
	return r
}

func (r *running) stop(t *testing.T) int {
	t.Helper()
	r.ctl <- ctlStop
	select {
	case c := <-r.code:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("did not stop")
	}
	return -1
}

func (r *running) gen(t *testing.T) *Env {
	t.Helper()
	select {
	case e := <-r.gens:
		return e
	case <-time.After(5 * time.Second):
		t.Fatalf("run was not called (again); log:\n%s", r.log)
	}
	return nil
}

func TestNotifyProtocolAndStatusFile(t *testing.T) {
	sock := notifytest.Listen(t, "")
	t.Setenv("NOTIFY_SOCKET", sock.Path)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", "")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "popspool.toml")
	writeConfig(t, cfg, filepath.Join(dir, "spool"), "")
	r := start(t, "fetchd", cfg)
	r.gen(t)
	ready := sock.Wait(t, "READY=1", 5*time.Second)
	if !strings.Contains(ready, "STATUS=running; incoming 0") {
		t.Errorf("READY without the queue STATUS: %q", ready)
	}
	sock.Wait(t, "WATCHDOG=1", 2*time.Second)
	os.WriteFile(filepath.Join(dir, "spool", spool.Pickup, "x.eml"), []byte("x"), 0o600)
	sock.Wait(t, "pickup 1", 2*time.Second)
	if code := r.stop(t); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, r.log)
	}
	sock.Wait(t, "STOPPING=1", time.Second)

	f, err := status.Load(filepath.Join(dir, "spool"), "fetchd")
	if err != nil {
		t.Fatal(err)
	}
	if f.State != "stopped" || f.PID != os.Getpid() || f.Stopped.IsZero() || f.Folders[spool.Pickup].Files != 1 {
		t.Errorf("status %+v", f)
	}
	if a := f.Accounts["office"]; a == nil || a.Fetched != 3 || a.LastOK.IsZero() {
		t.Errorf("account office %+v", a)
	}
	if a := f.Accounts["shop"]; a == nil || a.LastError == nil || a.LastError.Event != 2005 || a.LastError.Error != "-ERR [AUTH] no" {
		t.Errorf("account shop %+v", a)
	}
	if e := f.LastError; e == nil || e.Event != 2005 || e.Name != "POP3 login refused" {
		t.Errorf("last error %+v", e)
	}
	if c := f.Events[2002]; c == nil || c.N != 1 || c.Bytes != 1234 || c.Timed != 1 {
		t.Errorf("event 2002 counted %+v", c)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "spool", spool.Status))
	if len(entries) != 1 {
		t.Errorf("status/ holds %d files (a temporary file left?)", len(entries))
	}
}

func TestReadyAfterGraceWhenDaemonNeverSaysSo(t *testing.T) {
	sock := notifytest.Listen(t, "")
	t.Setenv("NOTIFY_SOCKET", sock.Path)
	old := ReadyGrace
	ReadyGrace = 100 * time.Millisecond
	t.Cleanup(func() { ReadyGrace = old })
	dir := t.TempDir()
	cfg := filepath.Join(dir, "popspool.toml")
	writeConfig(t, cfg, filepath.Join(dir, "spool"), "")
	env, err := load("rewrited", cfg, false, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctl := make(chan control, 1)
	done := make(chan int)
	silent := func(ctx context.Context, env *Env) error { <-ctx.Done(); return nil }
	go func() { done <- newSupervisor("rewrited", silent, io.Discard, ctl).serve(env) }()
	sock.Wait(t, "READY=1", 2*time.Second)
	ctl <- ctlStop
	if <-done != 0 {
		t.Fatal("exit code")
	}
}

func TestReloadRefusesBrokenConfigAndAppliesGoodOne(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "popspool.toml")
	writeConfig(t, cfg, filepath.Join(dir, "spool"), "")
	r := start(t, "rewrited", cfg)
	first := r.gen(t)

	os.WriteFile(cfg, []byte("spool = \"x\"\n[log]\nlevel = \"loud\"\n"), 0o600)
	r.ctl <- ctlReload
	r.log.wait(t, `"event":1016`)
	if !strings.Contains(r.log.String(), cfg+":3: log.level") {
		t.Errorf("1016 without the file:line error:\n%s", r.log)
	}
	select {
	case <-r.gens:
		t.Fatal("run restarted with a broken config")
	case <-time.After(200 * time.Millisecond):
	}

	writeConfig(t, cfg, filepath.Join(dir, "spool"), "[log]\nlevel = \"warn\"\n")
	r.ctl <- ctlReload
	second := r.gen(t)
	if second.Config.Log.Level != "warn" || first.Config.Log.Level != "info" {
		t.Fatalf("levels %q then %q", first.Config.Log.Level, second.Config.Log.Level)
	}
	r.log.wait(t, `"event":2005`) // (1015 is info: hidden now)
	n := strings.Count(r.log.String(), `"event":2001`)
	if n != 1 {
		t.Errorf("info line 2001 written %d times after the level went to warn; want only the first", n)
	}
	if code := r.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	f, _ := status.Load(filepath.Join(dir, "spool"), "rewrited")
	if f == nil || f.Events[2001] == nil || f.Events[2001].N != 2 || f.Events[1015] == nil || f.Events[1016] == nil {
		t.Errorf("status must count info lines the output level hides: %+v", f)
	}
}

func TestDaemonErrorExitsOne(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "popspool.toml")
	writeConfig(t, cfg, filepath.Join(dir, "spool"), "")
	log := &syncBuf{}
	env, _ := load("deliverd", cfg, false, nil, log)
	fail := func(ctx context.Context, env *Env) error { return fmt.Errorf("disk on fire") }
	if code := newSupervisor("deliverd", fail, log, make(chan control)).serve(env); code != 1 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(log.String(), `"event":1019`) || !strings.Contains(log.String(), "disk on fire") {
		t.Errorf("log:\n%s", log)
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestMetricsEndpoint(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "popspool.toml")
	addr := freePort(t)
	writeConfig(t, cfg, filepath.Join(dir, "spool"), fmt.Sprintf("[metrics]\nfetchd = %q\n", addr))
	r := start(t, "fetchd", cfg)
	r.gen(t)
	r.log.wait(t, `"event":1021`)
	time.Sleep(3 * ScanEvery) // a scan
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"# TYPE popspool_events_total counter",
		`popspool_events_total{daemon="fetchd",event="2005",level="error"} 1`,
		`popspool_messages_total{daemon="fetchd",stage="fetched"} 1`,
		`popspool_message_bytes_total{daemon="fetchd",stage="fetched"} 1234`,
		`popspool_event_duration_seconds_sum{daemon="fetchd",event="2002"} 0.25`,
		`popspool_folder_files{folder="incoming"} 0`,
		`popspool_account_last_poll_ok{account="office"} 1`,
		`popspool_account_last_poll_ok{account="shop"} 0`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
	r.stop(t)
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("endpoint still up after stop")
	}
}

// The daemon's flags and a command's: -config before or after the word,
// unknown words and flags refused with the usage and exit 2, -h on stdout.
func TestDispatch(t *testing.T) {
	var got []string
	own := Command{Name: "check", Args: "[ACCOUNT]", Help: "check it",
		RunPath: func(path string, args []string) int { got = append([]string{path}, args...); return 0 }}
	noRun := func(context.Context, *Env) error { return nil }
	cmds := commands("fetchd", noRun, []Command{own})
	for _, tc := range []struct {
		args      []string
		code      int
		done      bool
		got       string // what check was run with
		out, errs string // in stdout, stderr
	}{
		{args: []string{"-config", "/x.toml", "check", "office"}, done: true, got: "/x.toml office"},
		{args: []string{"check", "-config", "/x.toml", "office"}, done: true, got: "/x.toml office"},
		{args: []string{"check", "office", "-config", "/x.toml"}, done: true, got: "/x.toml office"},
		{args: []string{"check", "a", "-config", "/x.toml", "b"}, done: true, got: "/x.toml a b"},
		{args: []string{"-config", "/x.toml", "-once"}},
		{args: []string{"bogus"}, code: 2, done: true, errs: `unknown command "bogus"`},
		{args: []string{"-bogus"}, code: 2, done: true, errs: "flag provided but not defined: -bogus"},
		{args: []string{"check", "-bogus"}, code: 2, done: true, errs: "usage: fetchd check [-config FILE] [ACCOUNT]"},
		{args: []string{"-h"}, done: true, out: "check [ACCOUNT]"},
		{args: []string{"help"}, done: true, out: "status "},
		{args: []string{"check", "-h"}, done: true, out: "check it"},
		{args: []string{"-version"}, done: true, out: "fetchd (popspool) "},
	} {
		got = nil
		var out, errs bytes.Buffer
		path, once, code, done := dispatch("fetchd", tc.args, cmds, &out, &errs)
		if code != tc.code || done != tc.done || strings.Join(got, " ") != tc.got ||
			!strings.Contains(out.String(), tc.out) || !strings.Contains(errs.String(), tc.errs) {
			t.Errorf("%q: exit %d done %v ran %q\nstdout: %s\nstderr: %s", tc.args, code, done, got, out.String(), errs.String())
		}
		if !done && (path != "/x.toml" || !once) {
			t.Errorf("%q: daemon with %q once=%v", tc.args, path, once)
		}
	}
}

func TestStatusCommandWithBrokenConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "popspool.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("spool = %q\n[log]\nlevel = \"loud\"\n", filepath.Join(dir, "spool"))), 0o600)
	var out, errs bytes.Buffer
	if code := statusCommand(cfg, nil, &out, &errs); code != 2 || !strings.Contains(errs.String(), "cannot read the spool") {
		t.Fatalf("no spool: exit %d, %s", code, errs.String())
	}
	os.Mkdir(filepath.Join(dir, "spool"), 0o700)
	out.Reset()
	code := statusCommand(cfg, nil, &out, &errs)
	if code != 1 || !strings.Contains(out.String(), cfg+":3: log.level") || !strings.Contains(out.String(), "fetchd: no status file") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errs.String())
	}
}

func TestEventRecord(t *testing.T) {
	line := `{"level":"error","daemon":"fetchd","event":2005,"account":"shop","error":"-ERR [AUTH] no","time":"2026-11-23T10:00:00Z","message":"login refused"}`
	id, lvl, text := eventRecord([]byte(line + "\n"))
	want := "login refused\r\n\r\nevent 2005: POP3 login refused (docs/events.md)\r\naccount: shop\r\nerror: -ERR [AUTH] no"
	if id != 2005 || lvl != zerolog.ErrorLevel || text != want {
		t.Fatalf("%d %v %q", id, lvl, text)
	}
	if id, _, text := eventRecord([]byte(`{"level":"debug","message":"x"}`)); id != 1000 || text != "x" {
		t.Fatalf("no event: %d %q", id, text)
	}
}

func TestTeeConsoleFormat(t *testing.T) {
	var out syncBuf
	tr := status.NewTracker("fetchd", "1")
	te := newTee(&out, tr)
	log := te.logger("fetchd", config.Log{Level: "info", Format: "console"})
	event.Emit(&log, event.LoginFailed).Str("account", "shop").Msg("login refused")
	got := out.String()
	if strings.HasPrefix(got, "{") || !strings.Contains(got, "login refused") || !strings.Contains(got, "shop") {
		t.Fatalf("console line %q", got)
	}
	if f := tr.Snapshot(); f.LastError == nil || f.LastError.Event != 2005 {
		t.Fatal("console format hid the line from the status")
	}
}

// The daemon runs on one processor unless GOMAXPROCS says otherwise.
func TestOneProc(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(2)
	oneProc()
	if n := runtime.GOMAXPROCS(0); n != 1 {
		t.Errorf("GOMAXPROCS unset: %d processors, want 1", n)
	}
	t.Setenv("GOMAXPROCS", "2")
	runtime.GOMAXPROCS(2)
	oneProc()
	if n := runtime.GOMAXPROCS(0); n != 2 {
		t.Errorf("GOMAXPROCS=2: %d processors, want 2", n)
	}
}
