package filter

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"

	"example.org/popspool/shared/config"
)

func TestListsAndFileReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "block")
	os.WriteFile(file, []byte("# spammers\nspam.example\n"), 0o600)
	f := New(config.Filter{BlockSenders: []string{"bad@evil.example"}, BlockSendersFile: file,
		AllowSenders: []string{"friend@spam.example"}, MaxHops: 3})
	for addr, want := range map[string]bool{"bad@evil.example": false, "BAD@evil.example": false, "good@evil.example": true,
		"x@spam.example": false, "friend@spam.example": true, "": true} {
		if _, ok := f.Sender(addr); ok != want {
			t.Errorf("sender %q: ok=%v", addr, ok)
		}
	}
	os.WriteFile(file, []byte("other.example\n"), 0o600)
	later := time.Now().Add(time.Second)
	os.Chtimes(file, later, later)
	if _, ok := f.Sender("x@spam.example"); !ok {
		t.Error("list file change not picked up")
	}
	if _, ok := f.Sender("y@other.example"); ok {
		t.Error("new entry not applied")
	}
}

func TestRecipients(t *testing.T) {
	f := New(config.Filter{BlockRecipients: []string{"@archive.contoso.local"}})
	kept, dropped := f.Recipients([]string{"a@contoso.local", "b@archive.contoso.local"})
	if len(kept) != 1 || len(dropped) != 1 || !strings.Contains(dropped[0], "blocked") {
		t.Fatalf("%v %v", kept, dropped)
	}
	f = New(config.Filter{AllowRecipients: []string{"a@contoso.local"}})
	kept, dropped = f.Recipients([]string{"a@contoso.local", "c@contoso.local"})
	if len(kept) != 1 || kept[0] != "a@contoso.local" || len(dropped) != 1 {
		t.Fatalf("%v %v", kept, dropped)
	}
}

func TestHops(t *testing.T) {
	f := New(config.Filter{MaxHops: 2})
	raw := strings.Repeat("Received: from x by y (popspool fetchd; account a; uidl 1) with POP3 id Z; date\r\n", 3) + "Received: from mx by isp; date\r\n\r\n"
	h, _ := textproto.ReadHeader(bufio.NewReader(strings.NewReader(raw)))
	if n, ok := f.Hops(h); n != 3 || ok {
		t.Fatalf("hops %d ok %v", n, ok)
	}
}

func TestCommand(t *testing.T) {
	sh := func(script, action string, timeout time.Duration) Verdict {
		c := &Command{Argv: []string{"sh", "-c", script}, Timeout: timeout, Action: action, TagHeader: "X-Spam"}
		return c.Run(context.Background(), strings.NewReader("Subject: x\r\n\r\nbody\r\n"))
	}
	if v := sh("cat >/dev/null; exit 0", "tag", time.Second); v != (Verdict{}) {
		t.Errorf("pass: %+v", v)
	}
	if v := sh("grep -q body && echo 7.5/5.0 && exit 1", "tag", time.Second); v.Tag != "7.5/5.0" {
		t.Errorf("tag: %+v", v)
	}
	if v := sh("echo spam; exit 1", "fail", time.Second); !strings.Contains(v.Reject, "spam") {
		t.Errorf("fail: %+v", v)
	}
	if v := sh("exit 3", "fail", time.Second); v.Broken == nil || v.Reject != "" {
		t.Errorf("broken filter must pass: %+v", v)
	}
	if v := sh("sleep 5", "fail", 200*time.Millisecond); v.Broken == nil || !strings.Contains(v.Broken.Error(), "timed out") {
		t.Errorf("timeout: %+v", v)
	}
	c := &Command{Argv: []string{"/nonexistent/filter"}, Timeout: time.Second, Action: "fail"}
	if v := c.Run(context.Background(), strings.NewReader("x")); v.Broken == nil {
		t.Errorf("missing command: %+v", v)
	}
}
