package worker

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/spool"
)

// Issue 13.1: an account with target = "NAME" gets its messages routed
// with an X-Popspool-Target line, below the X-Receiver lines; an account
// without gets none; explain names the target and its URL.
func TestRoutedWithTheAccountsTarget(t *testing.T) {
	dir := t.TempDir()
	pass := filepath.Join(dir, "p")
	os.WriteFile(pass, []byte("x\n"), 0o600)
	text := `spool = "` + filepath.Join(dir, "spool") + `"
[[account]]
name = "sales"
server = "pop.example.net"
username = "u"
password_file = "` + pass + `"
deliver_to = ["sales@contoso.local"]
target = "exchange"
[[account]]
name = "office"
server = "pop.example.net"
username = "u"
password_file = "` + pass + `"
deliver_to = ["office@contoso.local"]
[target.exchange]
url = "smtp://exchange.contoso.local:587"
`
	path := filepath.Join(dir, "popspool.toml")
	os.WriteFile(path, []byte(text), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := spool.Open(cfg.Spool, "rewrited", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w := New(s, cfg, zerolog.Nop())
	body := "Return-Path: <bob@example.net>\r\nFrom: bob@example.net\r\nSubject: hi\r\n\r\nbody\r\n"
	sales, office := spool.NewID(), spool.NewID()
	drop(t, w, sales+".eml", "X-Popspool-Account: sales\r\n"+body)
	drop(t, w, office+".eml", "X-Popspool-Account: office\r\n"+body)

	var out bytes.Buffer
	if err := w.Explain(context.Background(), filepath.Join(s.Dir(spool.Incoming), sales+".eml"), false, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"delivery target exchange: [target.exchange] url smtp://exchange.contoso.local:587 (X-Popspool-Target line)",
		"X-Receiver: <sales@contoso.local>\n  X-Popspool-Target: exchange"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	w.Explain(context.Background(), filepath.Join(s.Dir(spool.Incoming), office+".eml"), false, &out)
	if !strings.Contains(out.String(), "delivery target default: [deliver] target smtp://127.0.0.1:25 (no X-Popspool-Target line)") ||
		strings.Contains(out.String(), "X-Popspool-Target:") {
		t.Errorf("explain of the office account's message:\n%s", out.String())
	}

	if err := w.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(s.Dir(spool.Pickup), sales+".eml"))
	if want := "X-Sender: <bob@example.net>\r\nX-Receiver: <sales@contoso.local>\r\nX-Popspool-Target: exchange\r\nX-Popspool-Account: sales\r\n"; !strings.HasPrefix(string(got), want) {
		t.Errorf("sales routed as\n%q\nwant it to start\n%q", got, want)
	}
	got, _ = os.ReadFile(filepath.Join(s.Dir(spool.Pickup), office+".eml"))
	if want := "X-Sender: <bob@example.net>\r\nX-Receiver: <office@contoso.local>\r\nX-Popspool-Account: office\r\n"; !strings.HasPrefix(string(got), want) {
		t.Errorf("office routed as\n%q\nwant it to start\n%q", got, want)
	}
}
