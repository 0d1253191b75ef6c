package admin

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.org/popspool/shared/config"
)

// targetConfig is a loaded config with a [target.exchange] table for the
// account "sales", and the account "office" on [deliver]'s target.
func targetConfig(t *testing.T) *config.Config {
	t.Helper()
	root := testSpool(t).Spool
	dir := t.TempDir()
	pass := filepath.Join(dir, "p")
	os.WriteFile(pass, []byte("x\n"), 0o600)
	acct := func(name, extra string) string {
		return "[[account]]\nname = \"" + name + "\"\nserver = \"pop.example.net\"\nusername = \"u\"\npassword_file = \"" + pass +
			"\"\ndeliver_to = [\"" + name + "@contoso.local\"]\n" + extra + "\n"
	}
	text := "spool = \"" + root + "\"\n" + acct("office", "") + acct("sales", `target = "exchange"`) +
		"[deliver]\ntarget = \"smtp://127.0.0.1:25\"\n[target.exchange]\nurl = \"smtp://exchange.contoso.local:587\"\n"
	path := filepath.Join(dir, "popspool.toml")
	os.WriteFile(path, []byte(text), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Issue 13.1: queue and show say which target each message will use:
// the X-Popspool-Target line of a routed file, "default" without it, the
// account's target before routing, and an unknown name as unknown.
func TestQueueAndShowNameTheTarget(t *testing.T) {
	fixed(t, t0)
	cfg := targetConfig(t)
	ids := map[string]string{}
	mk := func(letter, place string, n int, env, account string) {
		ids[letter] = idAt(t0.Add(-time.Hour), n)
		put(t, cfg, place, ids[letter]+".eml", env, account, "From: bob@example.com\r\n")
	}
	mk("routed-ex", "pickup", 1, routed("bob@example.com", "sales@contoso.local")+"X-Popspool-Target: exchange\r\n", "sales")
	mk("routed-def", "pickup", 2, routed("bob@example.com", "office@contoso.local"), "office")
	mk("incoming-sales", "incoming", 3, "", "sales")
	mk("gone", "deferred", 4, routed("bob@example.com", "x@contoso.local")+"X-Popspool-Target: gone\r\n", "sales")
	var js bytes.Buffer
	if err := Queue(cfg, Filter{}, true, &js); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(js.String()), "\n") {
		var e Entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		got[e.ID] = e.Target
	}
	want := map[string]string{"routed-ex": "exchange", "routed-def": "default", "incoming-sales": "exchange", "gone": "gone"}
	for k, w := range want {
		if got[ids[k]] != w {
			t.Errorf("%s: target %q, want %q", k, got[ids[k]], w)
		}
	}
	var tab bytes.Buffer
	if err := Queue(cfg, Filter{}, false, &tab); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(tab.String(), "\n")
	if !strings.Contains(lines[0], "ACCOUNT  TARGET    SENDER") || !strings.Contains(line(lines, ids["routed-ex"]), "sales    exchange") {
		t.Errorf("table:\n%s", tab.String())
	}
	for k, w := range map[string]string{
		"routed-ex":      "delivery target exchange: smtp://exchange.contoso.local:587 (its X-Popspool-Target line)",
		"routed-def":     "delivery target default: smtp://127.0.0.1:25 (no X-Popspool-Target line)",
		"incoming-sales": "delivery target exchange: smtp://exchange.contoso.local:587 (its account's target, once routed)",
		"gone":           "delivery target gone: not in the config; deliverd defers it (event 4041)",
	} {
		var out bytes.Buffer
		if err := Show(cfg, ids[k], &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), w) {
			t.Errorf("show %s lacks %q:\n%s", k, w, out.String())
		}
	}
}

// Without [target.NAME] tables the table keeps its columns.
func TestQueueTableWithoutTargets(t *testing.T) {
	cfg, _ := sample(t)
	var tab bytes.Buffer
	if err := Queue(cfg, Filter{}, false, &tab); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tab.String(), "TARGET") {
		t.Errorf("a TARGET column without targets:\n%s", tab.String())
	}
}
