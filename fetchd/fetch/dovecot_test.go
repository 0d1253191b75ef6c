package fetch

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
	"example.org/popspool/spooltest/dovecot"
	"example.org/popspool/spooltest/faultproxy"
	"example.org/popspool/spooltest/samples"
)

// Tests against a real Dovecot POP3 server (spooltest/dovecot): skipped
// without root or Dovecot, unless POPSPOOL_REQUIRE_REAL=1.

const dcUser, dcPass = "office", "s3cret"

// newDovecotRig starts a Dovecot holding the 24 samples for user office
// and a Fetcher whose account uses it with the given tls mode: implicit
// (pop3s port), starttls or none (plain port).
func newDovecotRig(t *testing.T, tlsMode, password string) (*rig, *dovecot.Dovecot) {
	t.Helper()
	dc := dovecot.Start(t, map[string]string{dcUser: dcPass})
	return dovecotRig(t, dc, tlsMode, "", password), dc
}

// newDovecotRigBehindProxy is newDovecotRig with tls = "none" through a
// fault proxy that cuts where rule says.
func newDovecotRigBehindProxy(t *testing.T, rule faultproxy.Rule) (*rig, *dovecot.Dovecot, *faultproxy.Proxy) {
	t.Helper()
	dc := dovecot.Start(t, map[string]string{dcUser: dcPass})
	p := faultproxy.Start(t, dc.Addr, rule)
	return dovecotRig(t, dc, "none", p.Addr, dcPass), dc, p
}

// dovecotRig puts the samples into dc and sets up the account; server,
// when not empty, replaces the address.
func dovecotRig(t testing.TB, dc *dovecot.Dovecot, tlsMode, server, password string) *rig {
	t.Helper()
	r := &rig{want: map[string][]byte{}}
	for _, n := range samples.Names() {
		b, _ := samples.Read(n)
		dc.Put(t, dcUser, b)
		r.want[n] = dovecotWire(b)
	}
	a := config.Account{TLS: tlsMode, Username: dcUser, CAFile: dc.CAFile}
	switch {
	case server != "":
		a.Server = server
	case tlsMode == "implicit":
		a.Server = dc.TLSAddr
	default:
		a.Server = dc.Addr
	}
	if tlsMode == "none" {
		a.AllowPlaintext = true
	}
	r.setup(t, t.TempDir(), a, password)
	return r
}

// dovecotWire is what Dovecot sends for a message stored in a Maildir:
// lines end in CRLF on the wire (RFC 1939 §3), so a bare LF in the file
// goes out as CRLF, and the last line is ended. Everything else, NUL and
// 8-bit octets included, is sent as stored.
func dovecotWire(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		b = append(b, '\r', '\n')
	}
	return b
}

func TestDovecotImplicitTLS(t *testing.T) {
	r, dc := newDovecotRig(t, "implicit", dcPass)
	st, err := r.poll(t)
	if err != nil {
		t.Fatalf("poll: %v\n%s", err, r.log)
	}
	if st.Fetched != 24 || st.Deleted != 24 {
		t.Fatalf("stats %+v", st)
	}
	r.check(t)
	if n := dc.Count(t, dcUser); n != 0 {
		t.Fatalf("%d messages left in Dovecot", n)
	}
}

func TestDovecotSTLS(t *testing.T) {
	r, dc := newDovecotRig(t, "starttls", dcPass)
	if _, err := r.poll(t); err != nil {
		t.Fatalf("poll: %v\n%s", err, r.log)
	}
	r.check(t)
	if n := dc.Count(t, dcUser); n != 0 {
		t.Fatalf("%d messages left in Dovecot", n)
	}
}

// TestDovecotCutBeforeQuit is article Q141343 against a real server: the
// link drops after every DELE was answered but before QUIT reached the
// server, so Dovecot keeps all 24. The next poll downloads nothing again
// and deletes them.
func TestDovecotCutBeforeQuit(t *testing.T) {
	r, dc, p := newDovecotRigBehindProxy(t, func(conn int, dir faultproxy.Dir, line []byte) bool {
		return conn == 1 && dir == faultproxy.Up && strings.EqualFold(string(line), "QUIT\r\n")
	})
	if _, err := r.poll(t); err == nil {
		t.Fatal("cut session reported success")
	}
	if p.Cuts() != 1 {
		t.Fatalf("proxy cut %d times, want 1", p.Cuts())
	}
	if n := dc.Count(t, dcUser); n != 24 {
		t.Fatalf("Dovecot should keep all 24 without QUIT, has %d", n)
	}
	r.reopen(t) // as after a restart: the journal alone must know
	st, err := r.poll(t)
	if err != nil || st.Fetched != 0 || st.Deleted != 24 {
		t.Fatalf("second poll %+v %v\n%s", st, err, r.log)
	}
	r.check(t)
	if n := dc.Count(t, dcUser); n != 0 {
		t.Fatalf("%d left in Dovecot", n)
	}
}

func TestDovecotWrongPassword(t *testing.T) {
	r, dc := newDovecotRig(t, "implicit", "not-the-password")
	if _, err := r.poll(t); err == nil {
		t.Fatal("login with a wrong password reported success")
	}
	evs := r.log.events(event.LoginFailed)
	if len(evs) != 1 {
		t.Fatalf("want one LoginFailed event, got %d:\n%s", len(evs), r.log)
	}
	if msg, _ := evs[0]["error"].(string); !strings.Contains(msg, "[AUTH] Authentication failed.") {
		t.Fatalf("LoginFailed does not quote Dovecot's own -ERR text: %q", msg)
	}
	if strings.Contains(r.log.String(), "not-the-password") {
		t.Fatal("the password appears in the log")
	}
	if n := dc.Count(t, dcUser); n != 24 {
		t.Fatalf("Dovecot holds %d, want 24", n)
	}
}

// introspection is an RFC 7662 token introspection endpoint for Dovecot's
// oauth2 passdb: good is the one active token, for user office.
func introspection(t *testing.T, good string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if r.Form.Get("token") == good {
			fmt.Fprintf(w, `{"active": true, "username": %q}`, dcUser)
			return
		}
		fmt.Fprint(w, `{"active": false}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/introspect"
}

// TestDovecotAuthMethods logs in with every method of the auth key
// against the same Dovecot, over implicit TLS, and fetches one message
// each time. The OAuth token is longer than the 255-octet AUTH line, so
// it goes on a continuation line (the two-step login of Microsoft 365).
func TestDovecotAuthMethods(t *testing.T) {
	token := strings.Repeat("x", 1200)
	dc := dovecot.StartWith(t, map[string]string{dcUser: dcPass}, dovecot.Options{OAuth2URL: introspection(t, token)})
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)
	for _, method := range []string{"", "user", "apop", "plain", "login", "xoauth2", "oauthbearer"} {
		t.Run("auth="+method, func(t *testing.T) {
			r := &rig{}
			a := config.Account{TLS: "implicit", Server: dc.TLSAddr, CAFile: dc.CAFile, Username: dcUser}
			a.Auth = method
			r.setup(t, t.TempDir(), a, dcPass)
			if a := &r.cfg.Account[0]; a.OAuth() {
				a.PasswordFile = ""
				if method == "xoauth2" {
					a.TokenFile = tokenFile
				} else {
					a.TokenCommand = "cat " + tokenFile
				}
			}
			dc.Put(t, dcUser, []byte("Subject: via "+method+"\r\n\r\nhello\r\n"))
			st, err := r.poll(t)
			if err != nil || st.Fetched != 1 || dc.Count(t, dcUser) != 0 {
				t.Fatalf("poll %+v %v\n%s", st, err, r.log)
			}
			if m := strings.ToUpper(method); m != "" && m != "USER" && !strings.Contains(dc.Log(), "method="+m) {
				t.Fatalf("Dovecot's log shows no login with method=%s", m)
			}
			if strings.Contains(r.log.String(), token[:32]) || strings.Contains(r.log.String(), dcPass) {
				t.Fatal("a credential appears in the log")
			}
		})
	}
	t.Run("bad token", func(t *testing.T) {
		r := &rig{}
		a := config.Account{TLS: "implicit", Server: dc.TLSAddr, CAFile: dc.CAFile, Username: dcUser}
		a.Auth, a.TokenCommand = "oauthbearer", "echo expired-token"
		r.setup(t, t.TempDir(), a, "")
		r.cfg.Account[0].PasswordFile = ""
		_, err := r.poll(t)
		if kindOf(err) != failRefused || len(r.log.events(event.LoginFailed)) != 1 {
			t.Fatalf("bad token: %v\n%s", err, r.log)
		}
	})
}

func TestDovecotThousandMessages(t *testing.T) {
	dc := dovecot.Start(t, map[string]string{dcUser: dcPass})
	r := &rig{want: map[string][]byte{}}
	for i := 0; i < 1000; i++ {
		m := []byte(fmt.Sprintf("Message-ID: <%d@thousand>\r\nSubject: %d\r\n\r\nmessage %d\r\n", i, i, i))
		dc.Put(t, dcUser, m)
		r.want[fmt.Sprint(i)] = m
	}
	r.setup(t, t.TempDir(), config.Account{TLS: "implicit", Server: dc.TLSAddr, CAFile: dc.CAFile, Username: dcUser}, dcPass)
	st, err := r.poll(t)
	if err != nil || st.Fetched != 1000 || st.Deleted != 1000 {
		t.Fatalf("poll %+v %v", st, err)
	}
	r.check(t)
	if n := dc.Count(t, dcUser); n != 0 {
		t.Fatalf("%d left in Dovecot", n)
	}
}

// TestDovecotKeep: keep = true fetches each message once and leaves the
// mailbox as it was; keep_days deletes those fetched longer ago.
func TestDovecotKeep(t *testing.T) {
	r, dc := newDovecotRig(t, "implicit", dcPass)
	a := &r.cfg.Account[0]
	a.Keep = true
	for i := 0; i < 2; i++ {
		st, err := r.poll(t)
		if err != nil || st.Deleted != 0 || st.Fetched != 24*(1-i) {
			t.Fatalf("poll %d: %+v %v", i, st, err)
		}
	}
	r.check(t)
	if n := dc.Count(t, dcUser); n != 24 {
		t.Fatalf("keep: Dovecot holds %d, want 24", n)
	}
	a.KeepDays = 2
	j := r.f.journals["office"]
	n := 0
	for uidl, rec := range j.seen { // as if 10 of them were fetched three days ago
		if n == 10 {
			break
		}
		rec.at = rec.at.Add(-72 * time.Hour)
		j.seen[uidl] = rec
		n++
	}
	st, err := r.poll(t)
	if err != nil || st.Deleted != 10 || st.Fetched != 0 {
		t.Fatalf("keep_days poll %+v %v", st, err)
	}
	if n := dc.Count(t, dcUser); n != 14 {
		t.Fatalf("keep_days: Dovecot holds %d, want 14", n)
	}
}

// TestDovecotUntrustedCertificate: without ca_file the self-signed
// certificate is refused, on both ports, before any credential is sent.
func TestDovecotUntrustedCertificate(t *testing.T) {
	for _, mode := range []string{"implicit", "starttls"} {
		r, dc := newDovecotRig(t, mode, dcPass)
		r.cfg.Account[0].CAFile = ""
		if _, err := r.poll(t); err == nil {
			t.Fatalf("%s: untrusted certificate accepted", mode)
		}
		if len(r.log.events(event.TLSFailed)) != 1 {
			t.Fatalf("%s: want one TLSFailed event:\n%s", mode, r.log)
		}
		if strings.Contains(dc.Log(), "Login:") || strings.Contains(dc.Log(), "method=") {
			t.Fatalf("%s: Dovecot saw a login attempt:\n%s", mode, dc.Log())
		}
	}
}

// TestDovecotUnreadableMessage: a message file in the ISP's store that
// Dovecot's mail process may not read (owned by root, mode 0600): the
// others of the mailbox are fetched within two polls and deleted, the bad
// one is counted (2031) and left on the server (issue 11.1).
func TestDovecotUnreadableMessage(t *testing.T) {
	dc := dovecot.Start(t, map[string]string{dcUser: dcPass})
	r := &rig{want: map[string][]byte{}}
	var bad string
	for i := 1; i <= 5; i++ {
		b := []byte(fmt.Sprintf("Subject: m%d\nFrom: a@example.net\n\nbody of message %d\n", i, i))
		name := dc.Put(t, dcUser, b)
		if i == 3 {
			bad = filepath.Join(dc.Maildir(dcUser), "new", name)
			continue
		}
		r.want[name] = dovecotWire(b)
	}
	// The sizes in the name (S=, W=: Dovecot's Maildir++ extension) let
	// Dovecot list the mailbox without reading the file; without them it
	// must read it at login and refuses the whole mailbox.
	b, _ := os.ReadFile(bad)
	named := fmt.Sprintf("%s,S=%d,W=%d", bad, len(b), len(dovecotWire(b)))
	if err := os.Rename(bad, named); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(named, 0, 0); err != nil {
		t.Fatal(err)
	}
	a := config.Account{TLS: "none", AllowPlaintext: true, Username: dcUser, Server: dc.Addr}
	r.setup(t, t.TempDir(), a, dcPass)
	for range 2 {
		r.poll(t)
	}
	r.check(t)
	if n := len(r.log.events(event.MessageFailed)); n < 1 {
		t.Fatalf("no event 2031 for the unreadable message:\n%s", r.log)
	}
	if left := dc.Count(t, dcUser); left != 1 {
		t.Fatalf("Dovecot holds %d messages, want the unreadable one alone\n%s", left, dc.Log())
	}
}

// TestDovecotBuiltInOAuth logs in to Dovecot's oauth2 passdb with tokens
// fetchd got itself from a loopback authorization server, which Dovecot
// asks (introspection) whether they are active. The cached access token
// is one the server no longer takes: fetchd refreshes it and logs in on
// the second AUTH of the same session, with each SASL mechanism.
func TestDovecotBuiltInOAuth(t *testing.T) {
	idp := startIdP(t)
	intro := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if idp.takes(r.Form.Get("token")) {
			fmt.Fprintf(w, `{"active": true, "username": %q}`, dcUser)
			return
		}
		fmt.Fprint(w, `{"active": false}`)
	}))
	t.Cleanup(intro.Close)
	dc := dovecot.StartWith(t, map[string]string{dcUser: dcPass}, dovecot.Options{OAuth2URL: intro.URL + "/introspect"})
	for i, method := range []string{"xoauth2", "oauthbearer"} {
		t.Run(method, func(t *testing.T) {
			r := &rig{}
			a := config.Account{TLS: "implicit", Server: dc.TLSAddr, CAFile: dc.CAFile, Username: dcUser}
			a.Auth = method
			a.OAuthOptions = config.OAuthOptions{Provider: "custom", ClientID: testClient,
				Scopes: []string{"pop", "offline_access"}, TokenURL: idp.srv.URL + "/token"}
			r.setup(t, t.TempDir(), a, "")
			r.f.httpClient = idp.srv.Client()
			stale := &tokenCache{RefreshToken: idp.refresh, AccessToken: "at-stale-" + strings.Repeat("s", 1200), Expiry: time.Now().Add(time.Hour)}
			if err := writeCache(spool.OS{}, CachePath(r.s.Dir(spool.State), "office"), stale); err != nil {
				t.Fatal(err)
			}
			dc.Put(t, dcUser, []byte("Subject: via built-in "+method+"\r\n\r\nhello\r\n"))
			st, err := r.poll(t)
			if err != nil || st.Fetched != 1 || dc.Count(t, dcUser) != 0 {
				t.Fatalf("poll %+v %v\n%s\n%s", st, err, r.log, dc.Log())
			}
			if idp.counts() != i+1 || !strings.Contains(dc.Log(), "method="+strings.ToUpper(method)) {
				t.Fatalf("%d refreshes; Dovecot's log:\n%s", idp.counts(), dc.Log())
			}
			idp.noSecrets(t, r.log.String())
		})
	}
}
