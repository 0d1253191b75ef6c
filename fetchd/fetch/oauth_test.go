package fetch

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/spool/faultfs"
)

// fakeIdP is an OAuth 2.0 authorization server on loopback: the token
// endpoint (refresh_token and device_code grants) and the device
// authorization endpoint (RFC 8628).
type fakeIdP struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	refresh   string          // the refresh token it takes
	revoked   bool            // refuse it: invalid_grant
	rotate    bool            // issue a new refresh token with each refresh
	expiresIn int             // seconds; default 3600
	valid     map[string]bool // access tokens it issued and a POP3 server takes
	secrets   []string        // every token it handed out
	refreshes int
	device    []string    // scripted answers to the device_code grant; "ok" issues tokens
	polls     []time.Time // device_code grant requests
}

const testClient = "popspool-test-client"

func startIdP(t *testing.T) *fakeIdP {
	p := &fakeIdP{t: t, refresh: "rt-0-" + strings.Repeat("r", 40), valid: map[string]bool{}}
	p.secrets = append(p.secrets, p.refresh)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("POST /device", p.deviceAuth)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakeIdP) fail(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `{"error": %q, "error_description": %q}`, code, desc)
}

func (p *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.Form.Get("client_id") != testClient {
		p.fail(w, "invalid_client", "unknown client")
		return
	}
	switch r.Form.Get("grant_type") {
	case "refresh_token":
		p.refreshes++
		if p.revoked || r.Form.Get("refresh_token") != p.refresh {
			p.fail(w, "invalid_grant", "AADSTS70008: the refresh token has expired due to inactivity")
			return
		}
	case "urn:ietf:params:oauth:grant-type:device_code":
		p.polls = append(p.polls, time.Now())
		if r.Form.Get("device_code") != "dc-1" {
			p.fail(w, "invalid_grant", "unknown device code")
			return
		}
		next := "ok"
		if len(p.device) > 0 {
			next, p.device = p.device[0], p.device[1:]
		}
		if next != "ok" {
			p.fail(w, next, "scripted")
			return
		}
		p.rotate = true
	default:
		p.fail(w, "unsupported_grant_type", "")
		return
	}
	n := len(p.secrets)
	at := fmt.Sprintf("at-%d-%s", n, strings.Repeat("a", 40))
	p.valid[at] = true
	p.secrets = append(p.secrets, at)
	body := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": p.expires()}
	if p.rotate {
		p.refresh = fmt.Sprintf("rt-%d-%s", n, strings.Repeat("r", 40))
		p.secrets = append(p.secrets, p.refresh)
		body["refresh_token"] = p.refresh
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

func (p *fakeIdP) expires() int {
	if p.expiresIn == 0 {
		return 3600
	}
	return p.expiresIn
}

func (p *fakeIdP) deviceAuth(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	if r.Form.Get("client_id") != testClient || r.Form.Get("scope") != "pop offline_access" {
		p.fail(w, "invalid_client", "client or scope")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"device_code": "dc-1", "user_code": "WDJB-MJHT", "verification_uri": "https://idp.example/devicelogin", "expires_in": 60, "interval": 1}`)
}

func (p *fakeIdP) takes(tok string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.valid[tok]
}

func (p *fakeIdP) counts() (refreshes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refreshes
}

// noSecrets fails if any token the IdP handed out is in text.
func (p *fakeIdP) noSecrets(t *testing.T, text string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.secrets {
		if strings.Contains(text, s) || strings.Contains(text, s[:12]) {
			t.Fatalf("a token (%s...) appears in:\n%s", s[:5], text)
		}
	}
}

// oauthRig is a rig whose account logs in with XOAUTH2 to a fakePOP that
// takes only the access tokens p issued, and refreshes them at p.
type oauthRig struct {
	*rig
	idp   *fakeIdP
	pop   *fakePOP
	mu    sync.Mutex
	auths int  // AUTH commands the POP3 server saw
	deny  bool // the POP3 server takes no token
}

func newOAuthRig(t *testing.T) *oauthRig {
	t.Helper()
	o := &oauthRig{idp: startIdP(t)}
	o.pop = startFakePOP(t, fakeMessage("uid-1", "hello"))
	o.pop.capa = []string{"SASL XOAUTH2 OAUTHBEARER"}
	o.pop.hook = func(conn int, cmd string) (string, hookAction) {
		mech, ir, ok := strings.Cut(strings.TrimPrefix(cmd, "AUTH "), " ")
		if !strings.HasPrefix(cmd, "AUTH ") || !ok || mech != "XOAUTH2" {
			return "", hookPass
		}
		o.mu.Lock()
		o.auths++
		deny := o.deny
		o.mu.Unlock()
		b, _ := base64.StdEncoding.DecodeString(ir)
		_, tok, _ := strings.Cut(string(b), "auth=Bearer ")
		if !deny && o.idp.takes(strings.TrimRight(tok, "\x01")) {
			return "", hookPass
		}
		return "-ERR [AUTH] invalid credentials or token\r\n", hookReply
	}
	o.rig = &rig{}
	a := configAccount(o.pop.addr())
	a.Auth = "xoauth2"
	a.OAuthOptions = config.OAuthOptions{Provider: "custom", ClientID: testClient,
		Scopes: []string{"pop", "offline_access"}, TokenURL: o.idp.srv.URL + "/token", DeviceURL: o.idp.srv.URL + "/device"}
	o.setup(t, t.TempDir(), a, "")
	o.f.httpClient = o.idp.srv.Client()
	return o
}

func (o *oauthRig) authCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.auths
}

func (o *oauthRig) cachePath() string { return CachePath(o.s.Dir(spool.State), "office") }

// store writes the cache as "fetchd oauth login" would.
func (o *oauthRig) store(t *testing.T, c tokenCache) {
	t.Helper()
	if err := writeCache(spool.OS{}, o.cachePath(), &c); err != nil {
		t.Fatal(err)
	}
}

func (o *oauthRig) cache(t *testing.T) tokenCache {
	t.Helper()
	fi, err := os.Stat(o.cachePath())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache mode %04o, want 0600", fi.Mode().Perm())
	}
	c, err := readCache(o.cachePath())
	if err != nil {
		t.Fatal(err)
	}
	return *c
}

// TestOAuthRefresh: with only a refresh token, the first poll gets an
// access token and stores it (0600); the next one uses it as it is; one
// that would expire within refreshMargin is renewed first, and a rotated
// refresh token is kept.
func TestOAuthRefresh(t *testing.T) {
	o := newOAuthRig(t)
	o.store(t, tokenCache{RefreshToken: o.idp.refresh})
	if st, err := o.poll(t); err != nil || st.Fetched != 1 {
		t.Fatalf("poll %+v %v\n%s", st, err, o.log)
	}
	c := o.cache(t)
	if o.idp.counts() != 1 || !o.idp.takes(c.AccessToken) || time.Until(c.Expiry) < 59*time.Minute || c.RefreshToken != o.idp.refresh {
		t.Fatalf("after the first poll: %d refreshes, cache expiry %v", o.idp.counts(), c.Expiry)
	}
	o.poll(t)
	if o.idp.counts() != 1 || o.authCount() != 2 {
		t.Fatalf("a valid access token was refreshed: %d refreshes, %d AUTH", o.idp.counts(), o.authCount())
	}
	c.Expiry = time.Now().Add(refreshMargin - time.Minute)
	o.store(t, c)
	o.idp.mu.Lock()
	o.idp.rotate = true
	o.idp.mu.Unlock()
	if _, err := o.poll(t); err != nil {
		t.Fatalf("poll: %v\n%s", err, o.log)
	}
	n := o.cache(t)
	if o.idp.counts() != 2 || n.AccessToken == c.AccessToken || n.RefreshToken == c.RefreshToken || n.RefreshToken != o.idp.refresh {
		t.Fatalf("expiring token: %d refreshes, access renewed %v, refresh rotated %v", o.idp.counts(), n.AccessToken != c.AccessToken, n.RefreshToken != c.RefreshToken)
	}
	if _, err := os.Stat(o.cachePath() + ".new"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
	o.idp.noSecrets(t, o.log.String())
}

// TestOAuthRetryOnce: a cached access token the server refuses is
// refreshed and tried once more; when the new one is refused too, the
// login fails after exactly two AUTH and one refresh.
func TestOAuthRetryOnce(t *testing.T) {
	o := newOAuthRig(t)
	log, err := event.NewLogger(o.log, "fetchd", "trace", "json") // with the POP3 transcript
	if err != nil {
		t.Fatal(err)
	}
	o.f.Log = log
	o.store(t, tokenCache{RefreshToken: o.idp.refresh, AccessToken: "at-revoked-early-" + strings.Repeat("x", 30), Expiry: time.Now().Add(time.Hour)})
	if st, err := o.poll(t); err != nil || st.Fetched != 1 {
		t.Fatalf("poll %+v %v\n%s", st, err, o.log)
	}
	if o.idp.counts() != 1 || o.authCount() != 2 || len(o.log.events(event.LoginFailed)) != 0 {
		t.Fatalf("%d refreshes, %d AUTH, want 1 and 2\n%s", o.idp.counts(), o.authCount(), o.log)
	}
	o.mu.Lock()
	o.deny = true // the server takes no token now, not even a new one
	o.mu.Unlock()
	_, err = o.poll(t)
	if kindOf(err) != failRefused || o.idp.counts() != 2 || o.authCount() != 4 || len(o.log.events(event.LoginFailed)) != 1 {
		t.Fatalf("refused twice: %v, %d refreshes (want 2), %d AUTH (want 4)\n%s", err, o.idp.counts(), o.authCount(), o.log)
	}
	if !strings.Contains(o.log.String(), "AUTH XOAUTH2") {
		t.Fatalf("no transcript in the log:\n%s", o.log)
	}
	o.idp.noSecrets(t, o.log.String()+err.Error())
}

// TestOAuthRevoked: a refresh token the provider refuses (invalid_grant)
// is event 2040 naming the command to run, sends nothing to the POP3
// server, counts as a refused login, and three of them stop the account
// (2021) instead of a loop; a new "fetchd oauth login" resumes it.
func TestOAuthRevoked(t *testing.T) {
	o := newOAuthRig(t)
	o.store(t, tokenCache{RefreshToken: o.idp.refresh})
	o.idp.mu.Lock()
	o.idp.revoked = true
	o.idp.mu.Unlock()
	for i := 0; i < breakerTrips; i++ {
		if _, err := o.poll(t); kindOf(err) != failRefused {
			t.Fatalf("poll %d: %v", i, err)
		}
	}
	ev := o.log.events(event.OAuthRevoked)
	if len(ev) != breakerTrips || !strings.Contains(ev[0]["message"].(string), "run fetchd oauth login office") ||
		!strings.Contains(ev[0]["server_said"].(string), "invalid_grant") {
		t.Fatalf("events 2040: %v\n%s", ev, o.log)
	}
	if stopped, _ := o.f.Stopped("office"); !stopped || o.authCount() != 0 || len(o.log.events(event.LoginStopped)) != 1 {
		t.Fatalf("stopped %v, %d AUTH sent\n%s", stopped, o.authCount(), o.log)
	}
	a := &o.cfg.Account[0]
	if o.f.mayResume(a) {
		t.Fatal("resumed with the same refresh token")
	}
	o.idp.mu.Lock()
	o.idp.revoked, o.idp.refresh = false, "rt-new-"+strings.Repeat("n", 40)
	o.idp.secrets = append(o.idp.secrets, o.idp.refresh)
	o.idp.mu.Unlock()
	o.store(t, tokenCache{RefreshToken: o.idp.refresh})
	if !o.f.mayResume(a) || len(o.log.events(event.LoginResumed)) != 1 {
		t.Fatalf("not resumed after a new login\n%s", o.log)
	}
	if st, err := o.poll(t); err != nil || st.Fetched != 1 {
		t.Fatalf("poll after login %+v %v", st, err)
	}
	o.idp.noSecrets(t, o.log.String())
}

// TestOAuthNoLogin: without a cache, or with a damaged one, event 2041
// and nothing sent; the damaged file's text is not quoted.
func TestOAuthNoLogin(t *testing.T) {
	o := newOAuthRig(t)
	_, err := o.poll(t)
	if kindOf(err) != failOther || len(o.log.events(event.OAuthNoLogin)) != 1 || o.authCount() != 0 || o.idp.counts() != 0 {
		t.Fatalf("%v\n%s", err, o.log)
	}
	os.WriteFile(o.cachePath(), []byte(`{"refresh_token": "rt-torn-secret-value`), 0o600)
	_, err = o.poll(t)
	if kindOf(err) != failOther || len(o.log.events(event.OAuthNoLogin)) != 2 || !strings.Contains(err.Error(), "damaged") ||
		strings.Contains(o.log.String(), "rt-torn") || o.authCount() != 0 {
		t.Fatalf("damaged: %v\n%s", err, o.log)
	}
}

// TestOAuthEndpointDown: a token endpoint that fails is event 2042, not
// a refused login, and the refresh token stays.
func TestOAuthEndpointDown(t *testing.T) {
	o := newOAuthRig(t)
	o.store(t, tokenCache{RefreshToken: o.idp.refresh})
	o.idp.srv.Close()
	_, err := o.poll(t)
	if kindOf(err) != failOther || len(o.log.events(event.OAuthFailed)) != 1 || o.cache(t).RefreshToken != o.idp.refresh {
		t.Fatalf("%v\n%s", err, o.log)
	}
	o.idp.noSecrets(t, o.log.String()+err.Error())
}

// TestOAuthDeviceLogin: the device flow prints the URL and code, polls
// through authorization_pending and slow_down (which adds 5 s to the
// interval, RFC 8628 §3.5) and stores the tokens 0600; expired_token
// and a declined sign-in end with a clear error and no cache.
func TestOAuthDeviceLogin(t *testing.T) {
	o := newOAuthRig(t)
	o.idp.device = []string{"authorization_pending", "slow_down", "ok"}
	var out bytes.Buffer
	var logs logBuf
	a := &o.cfg.Account[0]
	err := oauthLogin(context.Background(), a, o.s.Dir(spool.State), &out, zerolog.New(&logs), o.idp.srv.Client())
	if err != nil {
		t.Fatalf("login: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "https://idp.example/devicelogin") || !strings.Contains(out.String(), "WDJB-MJHT") {
		t.Fatalf("output:\n%s", out.String())
	}
	o.idp.mu.Lock()
	polls := append([]time.Time(nil), o.idp.polls...)
	o.idp.mu.Unlock()
	if len(polls) != 3 || polls[2].Sub(polls[1]) < 5*time.Second {
		t.Fatalf("%d polls, the one after slow_down %v after the last", len(polls), polls[len(polls)-1].Sub(polls[len(polls)-2]))
	}
	c := o.cache(t)
	if c.RefreshToken != o.idp.refresh || !o.idp.takes(c.AccessToken) || len(logs.events(event.OAuthLoggedIn)) != 1 {
		t.Fatalf("cache %v, events %s", c.RefreshToken != "", logs.String())
	}
	o.idp.noSecrets(t, out.String()+logs.String())
	if st, err := o.poll(t); err != nil || st.Fetched != 1 {
		t.Fatalf("poll after login %+v %v", st, err)
	}

	for _, c := range []struct{ script, want string }{
		{"expired_token", "the code expired before the sign-in was done: run fetchd oauth login again"},
		{"access_denied", "the sign-in was declined"},
	} {
		os.Remove(o.cachePath())
		o.idp.mu.Lock()
		o.idp.device = []string{"authorization_pending", c.script}
		o.idp.mu.Unlock()
		err := oauthLogin(context.Background(), a, o.s.Dir(spool.State), &out, zerolog.Nop(), o.idp.srv.Client())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v", c.script, err)
		}
		if _, err := os.Stat(o.cachePath()); !os.IsNotExist(err) {
			t.Fatalf("%s: a cache was written", c.script)
		}
	}
}

// TestOAuthCheck: fetchd check uses the spool's token cache, refreshes a
// stale token once, and names the command to run when there is none or
// it was revoked.
func TestOAuthCheck(t *testing.T) {
	o := newOAuthRig(t)
	a := &o.cfg.Account[0]
	run := func() (bool, string) {
		var out bytes.Buffer
		ok := check(context.Background(), a, o.s.Root, &out, zerolog.Nop(), nil)
		return ok, out.String()
	}
	if ok, out := run(); ok || !strings.Contains(out, "run fetchd oauth login office (event 2041)") {
		t.Fatalf("no cache: %v\n%s", ok, out)
	}
	o.store(t, tokenCache{RefreshToken: o.idp.refresh, AccessToken: "at-stale-" + strings.Repeat("s", 40), Expiry: time.Now().Add(time.Hour)})
	if ok, out := run(); !ok || o.idp.counts() != 1 || o.authCount() != 2 {
		t.Fatalf("stale token: %v, %d refreshes, %d AUTH\n%s", ok, o.idp.counts(), o.authCount(), out)
	}
	o.idp.mu.Lock()
	o.idp.revoked = true
	o.idp.mu.Unlock()
	o.store(t, tokenCache{RefreshToken: o.idp.refresh})
	ok, out := run()
	if ok || !strings.Contains(out, "invalid_grant") || !strings.Contains(out, "run fetchd oauth login office (event 2040)") {
		t.Fatalf("revoked: %v\n%s", ok, out)
	}
	o.idp.noSecrets(t, out)
}

// TestOAuthCacheWriteFaults: an I/O error at any step of replacing the
// cache is reported and leaves the old cache or the new one whole, with
// no temporary file behind.
func TestOAuthCacheWriteFaults(t *testing.T) {
	old := tokenCache{RefreshToken: "rt-old", AccessToken: "at-old", Expiry: time.Now().Add(time.Hour).Round(time.Second)}
	next := tokenCache{RefreshToken: "rt-new", AccessToken: "at-new", Expiry: time.Now().Add(2 * time.Hour).Round(time.Second)}
	for _, fault := range faultfs.Faults {
		t.Run(fault.String(), func(t *testing.T) {
			path := CachePath(t.TempDir(), "office")
			if err := writeCache(spool.OS{}, path, &old); err != nil {
				t.Fatal(err)
			}
			ffs := faultfs.New(fault, 1)
			err := writeCache(ffs, path, &next)
			if ffs.Hit() == "" {
				if err != nil {
					t.Fatalf("no fault hit, yet %v", err)
				}
				return // this kind of call is not made (a leftover's Remove)
			}
			if err == nil && fault.Kind != faultfs.Remove {
				t.Fatalf("%s failed, writeCache said nothing", fault)
			}
			c, rerr := readCache(path)
			if rerr != nil || (c.AccessToken != old.AccessToken && c.AccessToken != next.AccessToken) {
				t.Fatalf("after %s: %v %+v", fault, rerr, c)
			}
			if _, err := os.Stat(path + ".new"); !os.IsNotExist(err) && fault.Kind != faultfs.Remove {
				t.Fatalf("temporary file left after %s", fault)
			}
		})
	}
}

// TestOAuthImport: a refresh token from elsewhere is tried once and
// stored; one the provider refuses is an error naming invalid_grant, and
// no cache.
func TestOAuthImport(t *testing.T) {
	o := newOAuthRig(t)
	a := &o.cfg.Account[0]
	var out bytes.Buffer
	dir := o.s.Dir(spool.State)
	if err := oauthImport(context.Background(), a, dir, "rt-wrong-"+strings.Repeat("w", 30), &out, zerolog.Nop(), o.idp.srv.Client()); err == nil ||
		!strings.Contains(err.Error(), "invalid_grant") || strings.Contains(err.Error(), "rt-wrong") {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := os.Stat(o.cachePath()); !os.IsNotExist(err) {
		t.Fatal("a refused token was stored")
	}
	if err := oauthImport(context.Background(), a, dir, o.idp.refresh, &out, zerolog.Nop(), o.idp.srv.Client()); err != nil {
		t.Fatal(err)
	}
	if c := o.cache(t); c.RefreshToken != o.idp.refresh || !o.idp.takes(c.AccessToken) {
		t.Fatal("imported cache wrong")
	}
	if st, err := o.poll(t); err != nil || st.Fetched != 1 || o.idp.counts() != 2 {
		t.Fatalf("poll after import %+v %v, %d refreshes", st, err, o.idp.counts())
	}
	o.idp.noSecrets(t, out.String()+o.log.String())
}
