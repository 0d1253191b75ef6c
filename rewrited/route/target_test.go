package route

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.org/popspool/shared/config"
)

// A multi-drop account whose target is a maildir:// [target.NAME]
// passes over addresses without a Maildir under that target's path and
// maildir_create, not [deliver]'s; the route carries the target's name.
func TestMultiDropMaildirOfTheAccountsTarget(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive")
	os.MkdirAll(filepath.Join(archive, "carol", "new"), 0o700)
	pass := filepath.Join(dir, "p")
	os.WriteFile(pass, []byte("x\n"), 0o600)
	text := `spool = "` + dir + `/spool"
[[account]]
name = "box"
server = "pop.example.net"
username = "u"
password_file = "` + pass + `"
local_domains = ["contoso.local"]
unrouted_to = "postmaster@contoso.local"
target = "archive"
[deliver]
target = "maildir://` + dir + `/mail/{user}"
maildir_create = true
[target.archive]
url = "maildir://` + archive + `/{user}"
`
	path := filepath.Join(dir, "popspool.toml")
	os.WriteFile(path, []byte(text), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Decide(cfg, header(t, ours+"To: random@contoso.local, carol@contoso.local\n"))
	trace := strings.Join(r.Trace, "\n")
	if err != nil || strings.Join(r.Recipients, ",") != "carol@contoso.local" || r.Target != "archive" {
		t.Fatalf("got %v target %q (%v)\n%s", r.Recipients, r.Target, err, trace)
	}
	for _, want := range []string{"random@contoso.local: no Maildir " + filepath.Join(archive, "random") + ", and target.archive.maildir_create is off",
		"delivery target archive: [target.archive] url maildir://" + archive} {
		if !strings.Contains(trace, want) {
			t.Errorf("trace lacks %q:\n%s", want, trace)
		}
	}
}
