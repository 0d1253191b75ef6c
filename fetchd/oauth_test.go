package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
)

// TestOAuthLoginCommand runs "fetchd oauth login ACCOUNT" in-process
// against a loopback authorization server that grants at the first poll:
// the cache appears in the spool's state/ folder, mode 0600; bad
// arguments are usage errors.
func TestOAuthLoginCommand(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /device", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"device_code": "dc", "user_code": "ABCD-EFGH", "verification_uri": "https://idp.example/device", "expires_in": 30, "interval": 1}`)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token": "at-cmd", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "rt-cmd"}`)
	})
	idp := httptest.NewServer(mux)
	defer idp.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "popspool.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`spool = %q
[[account]]
name = "office"
server = "127.0.0.1:995"
username = "office@example.com"
auth = "xoauth2"
oauth_provider = "custom"
oauth_client_id = "cid"
oauth_token_url = %q
oauth_device_url = %q
deliver_to = ["a@l"]
`, filepath.Join(dir, "spool"), idp.URL+"/token", idp.URL+"/device")), 0o600)
	cfg, err := config.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{nil, {"login"}, {"logout", "office"}, {"login", "nobody"}} {
		if code := oauthLogin(context.Background(), cfg, zerolog.Nop(), args, ""); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	cache := filepath.Join(dir, "spool", "state", "oauth-office.json")
	if code := oauthLogin(context.Background(), cfg, zerolog.Nop(), []string{"login", "office"}, ""); code != 0 {
		t.Fatalf("exit %d", code)
	}
	fi, err := os.Stat(cache)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache: %v %v", err, fi)
	}
	os.Remove(cache)
	rt := filepath.Join(dir, "rt")
	os.WriteFile(rt, []byte("rt-from-elsewhere\n"), 0o600)
	args, from := oauthArgs([]string{"login", "-refresh-token-file", rt, "office"}, "")
	if code := oauthLogin(context.Background(), cfg, zerolog.Nop(), args, from); code != 0 || from != rt {
		t.Fatalf("import: exit %d, args %q %q", code, args, from)
	}
	if b, err := os.ReadFile(cache); err != nil || !strings.Contains(string(b), `"refresh_token":"rt-cmd"`) {
		t.Fatalf("imported cache: %v", err)
	}
}
