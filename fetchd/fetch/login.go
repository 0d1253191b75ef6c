package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/fetchd/pop3"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
)

// connect opens the session, logs in and learns the capabilities. Every
// failure is reported with its event and classified for the scheduler.
func (s *session) connect() error {
	a := s.a
	opts, err := dialOptions(a)
	if err != nil {
		event.Emit(&s.f.Log, event.TLSFailed).Str("account", a.Name).Err(err).Msg("check ca_file")
		return classify(err, failOther)
	}
	opts.NoPipelining = s.f.noPipelining || !a.Pipelines()
	opts.Trace = transcript(&s.f.Log, a)
	ctx, cut := context.WithCancelCause(context.Background())
	c, err := pop3.Dial(ctx, a.Server, opts)
	if err != nil {
		cut(nil)
		s.dialError(err)
		return classify(err, failOther)
	}
	s.c, s.cut = c, cut
	before, err := c.Capabilities()
	if err != nil {
		c.Close()
		return classify(s.protocolError(err), failOther)
	}
	if err := s.login(before); err != nil {
		c.Close()
		return err
	}
	s.loggedIn = true
	s.f.loggedIn(a.Name)
	after, err := c.Capabilities() // RFC 2449 §5: per-user values; DeleMany reuses them
	if err != nil {
		c.Close()
		return classify(s.protocolError(err), failOther)
	}
	s.caps = after
	s.noteCaps(before, after)
	return nil
}

// sessions counts the POP3 sessions of the process (config reloads
// included), so that each transcript has a number of its own: accounts
// poll at once, and one account polls again and again.
var sessions atomic.Uint64

// transcript is the POP3 transcript of a new session of a, logged to log
// at trace level (log.level = "trace"), or nil.
func transcript(log *zerolog.Logger, a *config.Account) func(dir byte, line string) {
	if !event.TraceOn(log) {
		return nil
	}
	return event.Transcript(log.With().Str("account", a.Name).Uint64("session", sessions.Add(1)).Logger())
}

// dialError reports a failed connection: the name, the TCP connection,
// TLS (handshake, certificate, a refused or missing STLS) or the greeting.
func (s *session) dialError(err error) {
	ev, msg := dialProblem(err)
	event.Emit(&s.f.Log, ev).Str("account", s.a.Name).Str("server", s.a.Server).Err(err).Msg(msg)
}

// dialProblem names the event of a failed Dial and what to do about it.
func dialProblem(err error) (event.ID, string) {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &dns):
		return event.NameUnresolved, "the server name does not resolve; check server and DNS"
	case isTLSError(err):
		return event.TLSFailed, "no TLS session, nothing was sent; check tls and ca_file (there is no fallback to clear text)"
	case errors.As(err, &ne) && ne.Timeout():
		return event.SessionTimeout, "the server did not answer in time; check server, port and firewalls"
	}
	return event.ConnectFailed, "cannot reach the mailbox; check server (host:port) and the network"
}

func dialOptions(a *config.Account) (pop3.Options, error) {
	o := pop3.Options{Timeout: a.Timeout.D(), AllowPlaintext: a.AllowPlaintext, MaxListing: a.MaxListing}
	switch a.TLS {
	case "implicit":
		o.TLS = pop3.TLSImplicit
	case "starttls":
		o.TLS = pop3.TLSStartTLS
	}
	o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if a.CAFile != "" {
		pem, err := os.ReadFile(a.CAFile)
		if err != nil {
			return o, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return o, fmt.Errorf("ca_file %s: no PEM certificate in it", a.CAFile)
		}
		o.TLSConfig.RootCAs = pool
	}
	return o, nil
}

func isTLSError(err error) bool {
	var cv *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &rh) || errors.As(err, &ua) || errors.As(err, &hn) ||
		errors.As(err, &ci) || errors.Is(err, pop3.ErrInsecure) ||
		strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "STLS")
}

// login authenticates with the account's method, or the best the server
// offers, and classifies a refusal.
func (s *session) login(caps pop3.Caps) error {
	a := s.a
	method, err := chooseAuth(a, caps, s.c)
	if err != nil {
		event.Emit(&s.f.Log, event.AuthNotOffered).Str("account", a.Name).Str("auth", a.Auth).
			Strs("sasl", caps.SASL).Err(err).Msg("nothing was sent; set auth to a method the server offers")
		return classify(err, failOther)
	}
	s.f.Log.Debug().Str("account", a.Name).Str("auth", method).Msg("logging in")
	err = s.authenticate(method)
	if err != nil && s.retryOAuth(err) {
		err = s.authenticate(method)
	}
	if err != nil {
		return s.loginError(err)
	}
	return nil
}

// authenticate runs one login with method.
func (s *session) authenticate(method string) error {
	a := s.a
	secret, err := s.credential()
	if err != nil {
		return err
	}
	switch method {
	case "apop":
		return s.c.APOP(a.Username, secret)
	case "plain":
		return s.c.Auth(pop3.PlainAuth("", a.Username, secret))
	case "login":
		return s.c.Auth(pop3.LoginAuth(a.Username, secret))
	case "xoauth2":
		return s.c.Auth(pop3.XOAuth2(a.Username, secret))
	case "oauthbearer":
		host, port := splitServer(a.Server)
		return s.c.Auth(pop3.OAuthBearer(a.Username, host, port, secret))
	}
	return s.c.Login(a.Username, secret)
}

// credential reads the password, or for OAuth the access token, afresh.
func (s *session) credential() (string, error) {
	a := s.a
	if a.BuiltInOAuth() {
		return s.oauthCredential()
	}
	if a.OAuth() {
		tok, err := readToken(a)
		if err != nil {
			event.Emit(&s.f.Log, event.TokenFailed).Str("account", a.Name).Err(err).Msg("check token_file or token_command")
			return "", classify(err, failOther)
		}
		return tok, nil
	}
	pass, err := a.Secret()
	if err != nil {
		event.Emit(&s.f.Log, event.Secret).Str("account", a.Name).Err(err).Msg("check password_file, password_env or password_command")
		return "", classify(err, failOther)
	}
	return pass, nil
}

func splitServer(server string) (string, int) {
	host, p, err := net.SplitHostPort(server)
	if err != nil {
		return server, 0
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

// chooseAuth returns the login method: the account's, if the server can
// take it, else the best the server offers for a password. Under TLS every
// method protects the password equally, so the most widely supported wins:
// USER, then SASL PLAIN, LOGIN, then APOP. APOP is never preferred on its
// own, not even in clear text: many servers put a timestamp in the
// greeting without supporting APOP, and a refused login counts toward the
// circuit breaker (set auth = "apop" to use it). A server without CAPA
// (RFC 2449) is assumed to take what is configured.
func chooseAuth(a *config.Account, caps pop3.Caps, c *pop3.Client) (string, error) {
	noCapa := len(caps.Raw) == 0
	offered := func(mech string) bool {
		for _, m := range caps.SASL {
			if strings.EqualFold(m, mech) {
				return true
			}
		}
		return noCapa
	}
	switch a.Auth {
	case "user":
		return "user", nil
	case "apop":
		if !c.APOPAvailable() {
			return "", errors.New("auth = \"apop\", but the greeting has no APOP timestamp (RFC 1939 §7)")
		}
		return "apop", nil
	case "plain", "login", "xoauth2", "oauthbearer":
		if !offered(a.Auth) {
			return "", fmt.Errorf("auth = %q, but the server offers SASL %v (CAPA)", a.Auth, caps.SASL)
		}
		return a.Auth, nil
	}
	switch {
	case caps.User || noCapa:
		return "user", nil
	case offered("PLAIN"):
		return "plain", nil
	case offered("LOGIN"):
		return "login", nil
	case c.APOPAvailable():
		return "apop", nil
	}
	return "user", nil // RFC 1939 §7: USER/PASS is the baseline; try it
}

// loginError reports a refused login and classifies it.
func (s *session) loginError(err error) error {
	var done *pollError
	if errors.As(err, &done) {
		return err // already reported (credential)
	}
	ev, kind, msg := loginProblem(err)
	if ev == event.ProtocolError {
		return classify(s.protocolError(err), kind)
	}
	e := event.Emit(&s.f.Log, ev).Str("account", s.a.Name).Str("user", s.a.Username)
	var pe *pop3.Error
	if errors.As(err, &pe) {
		e = e.Str("code", pe.Code)
	}
	e.Err(err).Msg(msg)
	return classify(err, kind)
}

// loginProblem classifies a failed login. RFC 2449 §8.1 [IN-USE] and
// [LOGIN-DELAY] and RFC 3206 §4 [SYS/TEMP] mean "later"; RFC 3206 §5
// [AUTH], §4 [SYS/PERM] and a bare -ERR (most often a wrong password, from
// servers without RESP-CODES) count toward the circuit breaker. Other
// codes are treated as temporary (STYLE.md §4).
func loginProblem(err error) (event.ID, failKind, string) {
	var pe *pop3.Error
	switch {
	case errors.As(err, &pe) && (codeIs(pe.Code, "IN-USE") || codeIs(pe.Code, "LOGIN-DELAY")):
		return event.MailboxInUse, failBusy, "another program holds the mailbox, or logins come too often; will try again later"
	case errors.As(err, &pe) && (pe.Code == "" || codeIs(pe.Code, "AUTH") || codeIs(pe.Code, "SYS/PERM")):
		return event.LoginFailed, failRefused, "check username and password (or token); the server's own words are in error"
	case errors.As(err, &pe):
		return event.ServerTempFail, failBusy, "the server failed for now; will try again later"
	case errors.Is(err, pop3.ErrInsecure):
		return event.Plaintext, failOther, "use tls = implicit or starttls"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return event.SessionTimeout, failOther, "the server did not answer in time"
	}
	return event.ProtocolError, failOther, "the server's reply was not understood"
}

// codeIs reports whether an RFC 2449 §8 response code is level or below
// it ("SYS/TEMP" is below "SYS"); levels are case-insensitive.
func codeIs(code, level string) bool {
	code = strings.ToUpper(code)
	return code == level || strings.HasPrefix(code, level+"/")
}

// loggedIn records the time of a successful login, for LOGIN-DELAY.
func (f *Fetcher) loggedIn(name string) {
	st := f.state(name)
	st.mu.Lock()
	st.lastLogin = time.Now()
	st.mu.Unlock()
}
