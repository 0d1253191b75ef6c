package console

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
)

// cookieName is the session cookie.
const cookieName = "popspool_console"

// sessionLife is how long a login lasts.
const sessionLife = 8 * time.Hour

type session struct {
	csrf    string
	expires time.Time
	flash   []string // what the last action said, shown once
}

type server struct {
	cfg       *config.Config
	tokenFile string
	log       zerolog.Logger
	mux       *http.ServeMux

	// loopbackHost refuses a Host header that is not loopback: a page
	// that rebinds its own name to 127.0.0.1 (DNS rebinding) gets nothing.
	loopbackHost bool

	loginMu sync.Mutex // one login checked at a time: a guesser gets two tries a second

	mu       sync.Mutex
	sessions map[string]*session
}

// New returns the console's handler; it checks the token file now (and
// reads it again at each login).
func New(cfg *config.Config, tokenFile string, log zerolog.Logger) (http.Handler, error) {
	return newServer(cfg, tokenFile, log)
}

func newServer(cfg *config.Config, tokenFile string, log zerolog.Logger) (*server, error) {
	if _, err := readToken(tokenFile); err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, tokenFile: tokenFile, log: log, sessions: map[string]*session{}, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.authed(s.logout))
	s.mux.HandleFunc("GET /{$}", s.authed(s.overview))
	s.mux.HandleFunc("GET /queue", s.authed(s.queue))
	s.mux.HandleFunc("GET /show", s.authed(s.show))
	s.mux.HandleFunc("POST /act", s.authed(s.act))
	s.mux.HandleFunc("POST /retrieve", s.authed(s.retrieve))
	return s, nil
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: under no-referrer a browser sends
	// "Origin: null" with the page's own forms, which sameOrigin refuses.
	// No link leads off the console, so nothing leaks either way.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	if s.loopbackHost && !loopbackName(r.Host) {
		http.Error(w, "this console answers to a loopback address only (127.0.0.1, [::1] or localhost)", http.StatusMisdirectedRequest)
		return
	}
	if r.Method == http.MethodPost {
		if !sameOrigin(r) {
			http.Error(w, "cross-site request refused", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	}
	s.mux.ServeHTTP(w, r)
}

// sameOrigin refuses a request that says it comes from another site: by
// Sec-Fetch-Site, Origin or, failing those, Referer. A request with none
// of them (a script on this machine) passes on to the session and CSRF
// token checks.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	from := r.Header.Get("Origin")
	if from == "" {
		from = r.Header.Get("Referer")
	}
	if from == "" {
		return true
	}
	u, err := url.Parse(from)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host == r.Host
}

// loopbackName reports whether a Host header names this machine's
// loopback.
func loopbackName(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather)
	return hex.EncodeToString(b)
}

// current returns the request's session, if it has a live one.
func (s *server) current(r *http.Request) (string, *session) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return "", nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for id, ss := range s.sessions { // few sessions: sweep the expired ones here
		if now.After(ss.expires) {
			delete(s.sessions, id)
		}
	}
	ss := s.sessions[c.Value]
	if ss == nil {
		return "", nil
	}
	return c.Value, ss
}

type handler func(w http.ResponseWriter, r *http.Request, ss *session)

// authed sends a request without a session to the login page, and
// refuses a POST whose CSRF token is not the session's.
func (s *server) authed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, ss := s.current(r)
		if ss == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "not logged in", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodPost {
			given := r.PostFormValue("csrf")
			if subtle.ConstantTimeCompare([]byte(given), []byte(ss.csrf)) != 1 {
				http.Error(w, "missing or wrong CSRF token: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		h(w, r, ss)
	}
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, "login", page{Title: "log in"})
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	want, err := readToken(s.tokenFile)
	if err != nil {
		event.Emit(&s.log, event.ConsoleFailed).Err(err).Msg("console: cannot read the token file; logins refused until it is mended")
		http.Error(w, "the console cannot read its token file; see the log", http.StatusInternalServerError)
		return
	}
	if !tokenMatches(r.PostFormValue("token"), want) {
		event.Emit(&s.log, event.ConsoleRefused).Str("remote", r.RemoteAddr).Msg("console login refused")
		time.Sleep(500 * time.Millisecond) // slows a guesser a little
		w.WriteHeader(http.StatusForbidden)
		s.render(w, "login", page{Title: "log in", Flash: []string{"wrong token"}})
		return
	}
	id := newToken()
	s.mu.Lock()
	s.sessions[id] = &session{csrf: newToken(), expires: time.Now().Add(sessionLife)}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(sessionLife / time.Second)})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *server) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	id, _ := s.current(r)
	s.mu.Lock()
	delete(s.sessions, id)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// takeFlash returns the session's flash lines and forgets them.
func (s *server) takeFlash(ss *session) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := ss.flash
	ss.flash = nil
	return f
}

func (s *server) setFlash(ss *session, out *bytes.Buffer, extra ...string) {
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if out.Len() == 0 {
		lines = nil
	}
	s.mu.Lock()
	ss.flash = append(lines, extra...)
	s.mu.Unlock()
}
