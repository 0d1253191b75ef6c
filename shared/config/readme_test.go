package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEExampleLoads keeps the config example of README.md valid.
func TestREADMEExampleLoads(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```toml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("no toml block in README.md")
	}
	dir := t.TempDir()
	for _, f := range []string{"office.pass", "domain.pass", "block-senders"} {
		os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o600)
	}
	text := strings.ReplaceAll(string(m[1]), "/etc/popspool/", dir+"/")
	path := filepath.Join(dir, "popspool.toml")
	os.WriteFile(path, []byte(text), 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Account) != 2 || !c.Account[1].MultiDrop() || c.Filter.Command[0] != "spamc" {
		t.Fatalf("example read wrongly: %+v", c)
	}
}
