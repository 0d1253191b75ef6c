package route

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Under a maildir:// target, a local address found in the header whose
// Maildir does not exist is passed over like an unknown one (issue 15.5):
// spam to random local parts creates no folders. An alias's target, an
// existing Maildir and maildir_create = true still route.
func TestMultiDropNeedsAMaildir(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "carol", "new"), 0o700)
	cfg := multi(unrouted)
	cfg.Deliver.Target = "maildir://" + root + "/{user}"
	for _, c := range []struct {
		to, want string
		unrouted bool
	}{
		{"carol@contoso.local", "carol@contoso.local", false},
		{"bob@contoso.local", "robert@contoso.local", false}, // the alias's target is named in the config
		{"random@contoso.local", "postmaster@contoso.local", true},
		{"random@contoso.local, carol@contoso.local", "carol@contoso.local", false},
	} {
		r, err := Decide(cfg, header(t, ours+"To: "+c.to+"\n"))
		if err != nil || strings.Join(r.Recipients, ",") != c.want || r.Unrouted != c.unrouted {
			t.Errorf("To: %s: got %v unrouted=%v (%v), want %s\n%s", c.to, r.Recipients, r.Unrouted, err, c.want, strings.Join(r.Trace, "\n"))
			continue
		}
		if strings.Contains(c.to, "random") && !strings.Contains(strings.Join(r.Trace, "\n"), "random@contoso.local: no Maildir "+filepath.Join(root, "random")) {
			t.Errorf("To: %s: the trace does not say why random was passed over:\n%s", c.to, strings.Join(r.Trace, "\n"))
		}
	}
	if _, err := os.Stat(filepath.Join(root, "random")); err == nil {
		t.Fatal("routing created a Maildir")
	}
	cfg.Deliver.MaildirCreate = true
	if r, _ := Decide(cfg, header(t, ours+"To: random@contoso.local\n")); strings.Join(r.Recipients, ",") != "random@contoso.local" {
		t.Fatalf("with maildir_create: %v", r.Recipients)
	}
	cfg.Deliver.Target = "smtp://127.0.0.1:25"
	cfg.Deliver.MaildirCreate = false
	if r, _ := Decide(cfg, header(t, ours+"To: random@contoso.local\n")); strings.Join(r.Recipients, ",") != "random@contoso.local" {
		t.Fatalf("an SMTP target: %v", r.Recipients)
	}
}
