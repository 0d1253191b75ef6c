package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"example.org/popspool/spooltest/dovecot"
)

// TestKill9MidMailbox runs the fetchd binary against a real Dovecot,
// kills it with SIGKILL in the middle of a mailbox, and runs it again:
// every message arrives in incoming/ exactly once and the mailbox ends
// empty.
func TestKill9MidMailbox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and moves 20 MB")
	}
	const n = 400
	dc := dovecot.Start(t, map[string]string{"office": "s3cret"})
	body := strings.Repeat(strings.Repeat("z", 76)+"\r\n", 640) // 50 KB
	for i := 0; i < n; i++ {
		dc.Put(t, "office", []byte(fmt.Sprintf("Message-ID: <%d@kill9>\r\nSubject: kill9 %d\r\n\r\n%s", i, i, body)))
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "fetchd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "pass"), []byte("s3cret\n"), 0o600)
	conf := filepath.Join(dir, "popspool.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`spool = %q
[log]
level = "warn"
[[account]]
name = "office"
server = %q
ca_file = %q
username = "office"
password_file = %q
deliver_to = ["alice@contoso.local"]
`, filepath.Join(dir, "spool"), dc.TLSAddr, dc.CAFile, filepath.Join(dir, "pass"))), 0o600)
	incoming := filepath.Join(dir, "spool", "incoming")

	var log bytes.Buffer
	cmd := exec.Command(bin, "-once", "-config", conf)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for count(incoming) < n/4 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	killedAt := count(incoming)
	if killedAt == 0 || killedAt >= n {
		t.Fatalf("killed with %d of %d in incoming/; the test needs a kill mid-mailbox", killedAt, n)
	}
	if left := dc.Count(t, "office"); left != n {
		t.Fatalf("Dovecot holds %d after the kill, want all %d (no QUIT)", left, n)
	}
	for run := 0; run < 2; run++ { // the second run finds nothing to do
		out, err := exec.Command(bin, "-once", "-config", conf).CombinedOutput()
		if err != nil {
			t.Fatalf("run %d after the kill: %v\n%s", run, err, out)
		}
	}
	if left := dc.Count(t, "office"); left != 0 {
		t.Fatalf("Dovecot still holds %d", left)
	}
	seen := map[string]int{}
	ents, _ := os.ReadDir(incoming)
	re := regexp.MustCompile(`(?m)^Subject: (kill9 \d+)\r$`)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(incoming, e.Name()))
		m := re.FindSubmatch(b)
		if m == nil || !bytes.HasSuffix(b, []byte(body)) {
			t.Fatalf("%s is not a whole test message", e.Name())
		}
		seen[string(m[1])]++
	}
	for i := 0; i < n; i++ {
		if c := seen[fmt.Sprintf("kill9 %d", i)]; c != 1 {
			t.Errorf("message %d arrived %d times", i, c)
		}
	}
	t.Logf("killed with %d of %d in incoming/; afterwards %d files, each message once", killedAt, n, len(ents))
}

func count(dir string) int {
	ents, _ := os.ReadDir(dir)
	return len(ents)
}
