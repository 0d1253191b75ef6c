package admin

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO or a symlink in a folder (an operator's mistake, or worse) is
// listed as unreadable; queue neither blocks on the FIFO nor follows the
// link.
func TestQueueListsWhatIsNotAFile(t *testing.T) {
	fixed(t, t0)
	cfg := testSpool(t)
	fifo := idAt(t0.Add(-time.Minute), 1)
	if err := syscall.Mkfifo(filepath.Join(cfg.Spool, "incoming", fifo+".eml"), 0o600); err != nil {
		t.Skip("no FIFO here:", err)
	}
	link := idAt(t0.Add(-time.Minute), 2)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("X-Sender: <leak@example.com>\r\n\r\n"), 0o600)
	os.Symlink(secret, filepath.Join(cfg.Spool, "pickup", link+".eml"))
	done := make(chan struct{})
	var out bytes.Buffer
	go func() {
		defer close(done)
		if err := Queue(cfg, Filter{}, false, &out); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("queue blocked on a FIFO")
	}
	lines := strings.Split(out.String(), "\n")
	if l := line(lines, fifo); !strings.Contains(l, "unreadable: open ") || !strings.Contains(l, "not a regular file") {
		t.Errorf("FIFO: %s", l)
	}
	if l := line(lines, link); !strings.Contains(l, "symbolic link") || strings.Contains(out.String(), "leak@") {
		t.Errorf("symlink: %s", l)
	}
}
