package check

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// Issue 13.1: deliverd check checks every configured target, each under
// a "target NAME" line; one failing does not stop the others, and the
// exit code is 1 if any failed.
func TestCheckEveryTarget(t *testing.T) {
	f1 := &fakeSMTP{exts: []string{"PIPELINING"}}
	f2 := &fakeSMTP{exts: []string{"PIPELINING"}}
	a1, a2 := f1.start(t), f2.start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	root := filepath.Join(t.TempDir(), "archive")
	if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := loadConfig(t, `target = "smtp://`+a1+`"`, `helo = "gw.popspool.test"`, `postmaster = "postmaster@popspool.test"`,
		"", "[target.exchange]", `url = "smtp://`+a2+`"`, `helo = "gw2.popspool.test"`,
		"", "[target.down]", `url = "smtp://`+down+`"`,
		"", "[target.archive]", `url = "maildir://`+root+`/{user}"`, "maildir_create = true")
	var out, log bytes.Buffer
	code := Run(context.Background(), cfg, &out, zerolog.New(&log))
	t.Logf("exit %d:\n%s", code, out.String())
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	sections := strings.Split(out.String(), "\n\n")
	want := []struct{ head, has string }{
		{"target default\ndeliver target smtp://" + a1, "  quit:      ok 221"},
		{"target archive\ndeliver target maildir://" + root, "  create:    ok maildir_create = true"},
		{"target down\ndeliver target smtp://" + down, "  connect:   FAILED: dial tcp " + down},
		{"target exchange\ndeliver target smtp://" + a2, "  quit:      ok 221"},
	}
	if len(sections) != len(want) {
		t.Fatalf("%d sections, want %d", len(sections), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(sections[i], w.head) || !strings.Contains(sections[i], w.has) {
			t.Errorf("section %d:\n%s\nwant %q ... %q", i, sections[i], w.head, w.has)
		}
	}
	if strings.Count(out.String(), "FAILED") != 1 || strings.Count(log.String(), `"event"`) != 1 ||
		!strings.Contains(log.String(), `"event":4031`) || !strings.Contains(log.String(), `"target_name":"down"`) {
		t.Errorf("want one failure, event 4031 for target down:\n%s", log.String())
	}
	if c := f2.commands(); len(c) == 0 || c[0] != "EHLO gw2.popspool.test" {
		t.Errorf("the exchange target was greeted with %q, not its own helo", c)
	}
}
