package console

import (
	"bytes"
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/spool"
)

const testToken = "s3cret-token-for-tests"

// syncBuffer is a log the server writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	cfg *config.Config
	srv *httptest.Server
	c   *http.Client
	log *syncBuffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "spool")
	for _, f := range spool.Folders {
		if err := os.MkdirAll(filepath.Join(root, f), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range spool.Daemons {
		os.MkdirAll(filepath.Join(root, spool.Tmp, d), 0o700)
	}
	tok := filepath.Join(dir, "console.token")
	if err := os.WriteFile(tok, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Spool: root, File: filepath.Join(dir, "popspool.toml"), Account: []config.Account{{Name: "office"}}}
	log := &syncBuffer{}
	h, err := New(cfg, tok, zerolog.New(log))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	return &fixture{cfg: cfg, srv: srv, c: c, log: log}
}

// deferred puts a message in deferred/ whose Subject and From carry a
// script, and returns its id and path.
func (f *fixture) deferred(t *testing.T) (string, string) {
	t.Helper()
	id := spool.NewID()
	msg := "X-Sender: <a@example.org>\r\nX-Receiver: <bob@example.net>\r\n" +
		"X-Popspool-Attempts: 2\r\nX-Popspool-Last-Error: 421 try later\r\n" +
		"X-Popspool-Account: office\r\n" +
		"From: <script>alert(1)</script> <a@example.org>\r\nSubject: <script>alert(1)</script>\r\n\r\nbody\r\n"
	path := filepath.Join(f.cfg.Spool, spool.Deferred, id+".eml")
	if err := os.WriteFile(path, []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	return id, path
}

func (f *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := f.c.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func (f *fixture) post(t *testing.T, path string, form url.Values, origin string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := f.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`)

// login logs in and returns the session's CSRF token.
func (f *fixture) login(t *testing.T) string {
	t.Helper()
	code, body := f.post(t, "/login", url.Values{"token": {testToken}}, f.srv.URL)
	if code != 200 || !strings.Contains(body, "Accounts") {
		t.Fatalf("login: %d\n%s", code, body)
	}
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field on the overview:\n%s", body)
	}
	return m[1]
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	if code, body := f.get(t, "/queue"); code != 200 || !strings.Contains(body, `name="token"`) {
		t.Fatalf("GET /queue without a session: %d, want the login form\n%s", code, body)
	}
	code, _ := f.post(t, "/login", url.Values{"token": {"wrong"}}, "")
	if code != http.StatusForbidden {
		t.Errorf("wrong token: %d, want 403", code)
	}
	if !strings.Contains(f.log.String(), `"event":1035`) {
		t.Errorf("refused login not logged as 1035: %s", f.log.String())
	}
	if strings.Contains(f.log.String(), "wrong") || strings.Contains(f.log.String(), testToken) {
		t.Errorf("the log shows a token: %s", f.log.String())
	}
	if code, body := f.get(t, "/queue"); !strings.Contains(body, `name="token"`) {
		t.Fatalf("after a refused login, /queue: %d, want the login form", code)
	}
	f.login(t)
	u, _ := url.Parse(f.srv.URL)
	cookies := f.c.Jar.Cookies(u)
	if len(cookies) != 1 || len(cookies[0].Value) != 64 {
		t.Fatalf("session cookie: %v", cookies)
	}
	code, body := f.get(t, "/queue")
	if code != 200 || !strings.Contains(body, `id="queue"`) {
		t.Fatalf("GET /queue with a session: %d\n%s", code, body)
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t)
	resp, err := f.c.Get(f.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for h, want := range map[string]string{"Content-Security-Policy": "default-src 'none'", "X-Content-Type-Options": "nosniff",
		"Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"} {
		if got := resp.Header.Get(h); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
}

func TestQueueEscapesHeaders(t *testing.T) {
	f := newFixture(t)
	id, _ := f.deferred(t)
	f.login(t)
	for _, path := range []string{"/queue", "/show?id=" + id} {
		code, body := f.get(t, path)
		if code != 200 || !strings.Contains(body, id) {
			t.Fatalf("GET %s: %d, want the message %s listed\n%s", path, code, id, body)
		}
		if strings.Contains(body, "<script>") {
			t.Errorf("GET %s shows a raw <script>:\n%s", path, body)
		}
		if !strings.Contains(body, "&lt;script&gt;") {
			t.Errorf("GET %s does not show the escaped header:\n%s", path, body)
		}
	}
	if _, body := f.get(t, "/queue"); !strings.Contains(body, "421 try later") || !strings.Contains(body, "bob@example.net") {
		t.Errorf("queue lacks the last error or the recipient:\n%s", body)
	}
}

func TestChangesNeedCSRFAndOrigin(t *testing.T) {
	f := newFixture(t)
	id, path := f.deferred(t)
	csrf := f.login(t)
	cases := []struct {
		name   string
		form   url.Values
		origin string
	}{
		{"no CSRF field", url.Values{"action": {"requeue"}, "id": {id}}, ""},
		{"wrong CSRF field", url.Values{"action": {"requeue"}, "id": {id}, "csrf": {strings.Repeat("0", 64)}}, ""},
		{"foreign Origin", url.Values{"action": {"requeue"}, "id": {id}, "csrf": {csrf}}, "http://evil.example"},
		{"null Origin", url.Values{"action": {"requeue"}, "id": {id}, "csrf": {csrf}}, "null"},
	}
	for _, c := range cases {
		if code, _ := f.post(t, "/act", c.form, c.origin); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", c.name, code)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%s: the message moved: %v", c.name, err)
		}
	}
	if code, _ := f.get(t, "/act?action=requeue&csrf="+csrf+"&id="+id); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /act: %d, want 405", code)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a GET moved the message: %v", err)
	}
	if code, _ := f.post(t, "/retrieve", url.Values{"account": {"office"}}, ""); code != http.StatusForbidden {
		t.Errorf("retrieve without CSRF: %d, want 403", code)
	}
	if _, err := os.Stat(filepath.Join(f.cfg.Spool, spool.Control, "retrieve-now.office")); err == nil {
		t.Error("retrieve without CSRF wrote the control file")
	}
	// A foreign Origin is refused on the login form too.
	if code, _ := f.post(t, "/login", url.Values{"token": {testToken}}, "http://evil.example"); code != http.StatusForbidden {
		t.Errorf("login from a foreign Origin: %d, want 403", code)
	}
}

func TestRequeueMovesTheFile(t *testing.T) {
	f := newFixture(t)
	id, path := f.deferred(t)
	csrf := f.login(t)
	code, body := f.post(t, "/act", url.Values{"action": {"requeue"}, "id": {id}, "csrf": {csrf}, "folder": {"deferred"}}, f.srv.URL)
	if code != 200 || !strings.Contains(body, "Queue: deferred/") {
		t.Fatalf("requeue: %d\n%s", code, body)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the message is still in deferred/: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.cfg.Spool, spool.Pickup, id+".eml")); err != nil {
		t.Errorf("the message is not in pickup/: %v", err)
	}
	if !strings.Contains(body, id+": deferred/ -&gt; pickup/") {
		t.Errorf("the page does not say what requeue did:\n%s", body)
	}
	rec, _ := os.ReadFile(filepath.Join(f.cfg.Spool, spool.Status, "actions.log"))
	if !strings.Contains(string(rec), `"action":"requeue"`) || !strings.Contains(string(rec), id) {
		t.Errorf("status/actions.log: %s", rec)
	}
	// The flash is shown once.
	if _, body := f.get(t, "/queue"); strings.Contains(body, `id="flash"`) {
		t.Error("the flash message is shown twice")
	}
	// Delete asks first, and deletes nothing until confirmed.
	if code, body := f.post(t, "/act", url.Values{"action": {"delete"}, "id": {id}, "csrf": {csrf}}, ""); code != 200 || !strings.Contains(body, "Delete for good?") {
		t.Fatalf("delete unconfirmed: %d\n%s", code, body)
	}
	if _, err := os.Stat(filepath.Join(f.cfg.Spool, spool.Pickup, id+".eml")); err != nil {
		t.Fatalf("an unconfirmed delete removed the message: %v", err)
	}
	// Hold, then release, then delete.
	for _, step := range []struct{ action, file string }{
		{"hold", filepath.Join(spool.Pickup, ".hold-"+id+".eml")},
		{"release", filepath.Join(spool.Pickup, id+".eml")},
		{"delete", ""},
	} {
		if code, body := f.post(t, "/act", url.Values{"action": {step.action}, "id": {id}, "csrf": {csrf}, "confirm": {"yes"}}, ""); code != 200 {
			t.Fatalf("%s: %d\n%s", step.action, code, body)
		}
		if step.file != "" {
			if _, err := os.Stat(filepath.Join(f.cfg.Spool, step.file)); err != nil {
				t.Errorf("after %s: %v", step.action, err)
			}
		}
	}
	matches, _ := filepath.Glob(filepath.Join(f.cfg.Spool, spool.Pickup, "*"+id+"*"))
	if len(matches) != 0 {
		t.Errorf("after delete: %v", matches)
	}
}

func TestRetrieveWritesControlFile(t *testing.T) {
	f := newFixture(t)
	csrf := f.login(t)
	done := make(chan struct{})
	go func() { // stand in for fetchd: take the request
		defer close(done)
		p := filepath.Join(f.cfg.Spool, spool.Control, "retrieve-now.office")
		for i := 0; i < 100; i++ {
			if os.Remove(p) == nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	code, body := f.post(t, "/retrieve", url.Values{"account": {"office"}, "csrf": {csrf}}, "")
	<-done
	if code != 200 || !strings.Contains(body, "fetchd took the request") {
		t.Errorf("retrieve: %d\n%s", code, body)
	}
}

func TestTokenFileRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{Spool: dir}
	loose := filepath.Join(dir, "loose.token")
	os.WriteFile(loose, []byte(testToken+"\n"), 0o644)
	os.Chmod(loose, 0o644)
	empty := filepath.Join(dir, "empty.token")
	os.WriteFile(empty, nil, 0o600)
	for name, path := range map[string]string{"mode 0644": loose, "empty": empty, "missing": filepath.Join(dir, "none")} {
		if _, err := New(cfg, path, zerolog.Nop()); err == nil {
			t.Errorf("%s token file accepted", name)
		}
	}
	var log bytes.Buffer
	err := Serve(context.Background(), cfg, Options{TokenFile: loose}, zerolog.New(&log))
	if err == nil || !strings.Contains(log.String(), `"event":1036`) {
		t.Errorf("Serve with a 0644 token file: %v, log %s", err, log.String())
	}
}

func TestListenLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:8025": true, "[::1]:8025": true, "localhost:8025": true,
		"0.0.0.0:8025": false, ":8025": false, "192.0.2.1:8025": false} {
		if err := checkLoopback(addr, false); (err == nil) != ok {
			t.Errorf("%s: %v", addr, err)
		}
	}
	if err := checkLoopback("0.0.0.0:8025", true); err != nil {
		t.Errorf("-allow-remote: %v", err)
	}
}

func TestLoopbackHostOnly(t *testing.T) {
	f := newFixture(t)
	f.srv.Config.Handler.(*server).loopbackHost = true
	req, _ := http.NewRequest("GET", f.srv.URL+"/login", nil)
	req.Host = "rebound.evil.example:8025"
	resp, err := f.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("a foreign Host: %d, want 421", resp.StatusCode)
	}
	for _, h := range []string{"127.0.0.1:8025", "localhost:8025", "[::1]:8025", "localhost"} {
		if !loopbackName(h) {
			t.Errorf("%s refused", h)
		}
	}
	if code, _ := f.get(t, "/login"); code != 200 {
		t.Errorf("GET /login on 127.0.0.1: %d", code)
	}
}
