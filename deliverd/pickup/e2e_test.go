package pickup_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message"

	"example.org/popspool/spooltest/harness"
)

// consumer stands in for the IIS SMTP or Exchange Transport service: it
// takes every .eml file out of the pickup folder, as those services do,
// while deliverd is killed and restarted.
type consumer struct {
	dir, taken string
	stop       chan struct{}
	wg         sync.WaitGroup
}

func (c *consumer) run() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-time.After(15 * time.Millisecond):
		}
		found, _ := filepath.Glob(filepath.Join(c.dir, "*.eml"))
		for _, p := range found {
			os.Rename(p, filepath.Join(c.taken, filepath.Base(p)))
		}
	}
}

// TestFlowIntoPickupFolder runs the three daemons with a pickup:// target
// and a consumer taking files out of the folder, kills deliverd again and
// again, and checks that every message arrived exactly once, complete,
// parseable by go-message, with X-Sender and X-Receiver matching the
// envelope, and nothing left in the staging folder.
func TestFlowIntoPickupFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	bins, err := harness.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mailroot := filepath.Join(dir, "mailroot")
	pickupDir, taken := filepath.Join(mailroot, "Pickup"), filepath.Join(dir, "taken")
	for _, d := range []string{pickupDir, taken} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	f, err := harness.New(dir, bins, harness.Options{Target: "pickup://" + pickupDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(f.Logs, "deliverd.log"))
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			t.Logf("deliverd log (last 3000 bytes):\n%s", b)
		}
	})
	const n = 150
	want, err := harness.Generate(f.Box, n, 7)
	if err != nil {
		t.Fatal(err)
	}
	c := &consumer{dir: pickupDir, taken: taken, stop: make(chan struct{})}
	c.wg.Add(1)
	go c.run()
	for _, d := range harness.Daemons {
		if err := f.Start(d); err != nil {
			t.Fatal(err)
		}
	}
	kills := 0
	for i := 0; i < 8 && !f.Settled(); i++ {
		time.Sleep(time.Duration(40+30*i) * time.Millisecond)
		if err := f.Kill("deliverd"); err != nil {
			t.Fatal(err)
		}
		kills++
		if err := f.Start("deliverd"); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int { m, _ := filepath.Glob(filepath.Join(taken, "*.eml")); return len(m) }
	if !harness.WaitFor(90*time.Second, func() bool { return f.Settled() && count() >= n }) {
		t.Fatalf("not settled: %d taken of %d, spool %v", count(), n, f.SpoolFiles())
	}
	for _, d := range harness.Daemons {
		if err := f.Stop(d, 10*time.Second); err != nil {
			t.Errorf("stop %s: %v", d, err)
		}
	}
	close(c.stop)
	c.wg.Wait()
	t.Logf("deliverd killed %d times; %d files taken", kills, count())

	seen := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(taken, "*.eml"))
	rest, _ := filepath.Glob(filepath.Join(pickupDir, "*"))
	files = append(files, rest...)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		seen[string(checkFile(t, p, b))]++
	}
	for i, w := range want {
		if got := seen[string(harness.Wire(w))]; got != 1 {
			t.Errorf("message %d arrived %d times", i, got)
		}
	}
	if len(files) != n {
		t.Errorf("%d files for %d messages", len(files), n)
	}
	if left, _ := os.ReadDir(filepath.Join(mailroot, "popspool-staging")); len(left) != 0 {
		t.Errorf("left in staging: %d files", len(left))
	}
}

// checkFile parses a pickup file and returns the message as the POP3
// server sent it (after fetchd's X-Popspool-Account line).
func checkFile(t *testing.T, path string, b []byte) []byte {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("X-Sender: <")) {
		t.Fatalf("%s does not start with X-Sender: %q", path, b[:min(len(b), 80)])
	}
	if bytes.Contains(bytes.ReplaceAll(b, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatalf("%s has a bare LF", path)
	}
	e, err := message.Read(bytes.NewReader(b))
	if err != nil && !message.IsUnknownCharset(err) {
		t.Fatalf("%s: %v", path, err)
	}
	if _, err := io.Copy(io.Discard, e.Body); err != nil {
		t.Fatalf("%s body: %v", path, err)
	}
	rcpts := e.Header.Values("X-Receiver")
	if len(rcpts) != 1 || rcpts[0] != "<alice@example.local>" {
		t.Fatalf("%s: X-Receiver %q", path, rcpts)
	}
	if s := e.Header.Get("X-Sender"); !strings.HasPrefix(s, "<sender") || !strings.HasSuffix(s, "@isp.example>") {
		t.Fatalf("%s: X-Sender %q", path, s)
	}
	marker := []byte("X-Popspool-Account: demo\r\n")
	i := bytes.Index(b, marker)
	if i < 0 {
		t.Fatalf("%s: no %q", path, marker)
	}
	return b[i+len(marker):]
}
