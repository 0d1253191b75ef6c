package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"example.org/popspool/shared/notify/notifytest"
	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/status"
)

// The service machinery as an operator meets it, on the real binary:
// systemd's notify protocol, SIGHUP with a broken and then a good config,
// the status file and subcommand, and SIGTERM.
func TestServiceLifeCycle(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("signals and sd_notify are Unix")
	}
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "rewrited")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	root := filepath.Join(dir, "spool")
	cfg := filepath.Join(dir, "popspool.toml")
	writeCfg(t, cfg, root, "alice@contoso.local", `"info"`)

	sock := notifytest.Listen(t, "")
	cmd := exec.Command(bin, "-config", cfg)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock.Path, "WATCHDOG_USEC=1000000", "WATCHDOG_PID=")
	log := &lockedBuf{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	sock.Wait(t, "READY=1", 10*time.Second)
	sock.Wait(t, "STATUS=running; incoming 0, pickup 0", time.Second)
	sock.Wait(t, "WATCHDOG=1", 3*time.Second)
	routedTo(t, root, "alice@contoso.local")

	// A broken config is refused; the daemon works on with the old one.
	os.WriteFile(cfg, []byte(fmt.Sprintf("spool = %q\n[log]\nlevel = \"loud\"\n", root)), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	log.wait(t, `"event":1016`)
	if !strings.Contains(log.String(), cfg+`:3: log.level: \"loud\"`) {
		t.Errorf("1016 does not name file:line:\n%s", log)
	}
	sock.Wait(t, "RELOADING=1", time.Second)
	routedTo(t, root, "alice@contoso.local")

	// A good one is taken: the next message goes to the new address.
	writeCfg(t, cfg, root, "bob@contoso.local", `"info"`)
	cmd.Process.Signal(syscall.SIGHUP)
	log.wait(t, `"event":1015`)
	routedTo(t, root, "bob@contoso.local")

	// The status file, and the table.
	waitFor(t, "status file with 3 routed", func() bool {
		f, err := status.Load(root, "rewrited")
		return err == nil && f.State == "running" && f.Events[3001] != nil && f.Events[3001].N == 3
	})
	out, _ := exec.Command(bin, "status", "-config", cfg).CombinedOutput()
	if !regexpLine(string(out), "rewrited", "running") || !strings.Contains(string(out), "pickup/      3") {
		t.Errorf("status table:\n%s", out)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, log)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	sock.Wait(t, "STOPPING=1", time.Second)
	if f, err := status.Load(root, "rewrited"); err != nil || f.State != "stopped" {
		t.Fatalf("final status %+v %v", f, err)
	}
}

func writeCfg(t *testing.T, path, root, to, level string) {
	t.Helper()
	text := fmt.Sprintf(`spool = %q
rescan = "1s"
[log]
level = %s
[[account]]
name = "office"
server = "pop.example.net"
username = "office@example.net"
password = "x"
deliver_to = [%q]
`, root, level, to)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// routedTo drops a message into incoming/ and waits for it in pickup/,
// addressed to rcpt.
func routedTo(t *testing.T, root, rcpt string) {
	t.Helper()
	id := spool.NewID()
	tmp := filepath.Join(root, spool.Incoming, "."+id)
	msg := "Received: from pop.example.net\r\nX-Popspool-Account: office\r\nReturn-Path: <bob@example.net>\r\nFrom: Bob <bob@example.net>\r\nSubject: hi\r\n\r\nbody\r\n"
	os.WriteFile(tmp, []byte(msg), 0o600)
	os.Rename(tmp, filepath.Join(root, spool.Incoming, id+".eml"))
	var got []byte
	waitFor(t, id+" in pickup/", func() bool {
		var err error
		got, err = os.ReadFile(filepath.Join(root, spool.Pickup, id+".eml"))
		return err == nil
	})
	if !bytes.Contains(got, []byte("X-Receiver: <"+rcpt+">\r\n")) {
		t.Fatalf("routed, but not to %s:\n%s", rcpt, got)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func regexpLine(text, first, second string) bool {
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == first && f[1] == second {
			return true
		}
	}
	return false
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuf) wait(t *testing.T, want string) {
	t.Helper()
	waitFor(t, want+" in the log", func() bool { return strings.Contains(l.String(), want) })
}
