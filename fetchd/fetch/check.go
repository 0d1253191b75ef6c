package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/fetchd/pop3"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// certWarning is how close to its expiry a server certificate is reported.
const certWarning = 21 * 24 * time.Hour

// Check does, for one account, the troubleshooting an operator would do
// with telnet (article 885685, "Troubleshoot the download process"): it
// resolves the server's name, connects, runs the TLS handshake and shows
// the certificate, reads the greeting, asks for the capabilities, logs in
// (quoting the server's own -ERR text), and asks for the drop listing
// (STAT). It writes one line per step to out, "ok ..." or "FAILED: what
// happened — what to do (event N)", stops at the first failure and
// reports whether every step passed. It deletes nothing and downloads
// nothing. At trace level log gets the POP3 transcript.
// spoolRoot is the spool, whose state/ folder has the token cache of an
// account with built-in OAuth.
func Check(ctx context.Context, a *config.Account, spoolRoot string, out io.Writer, log zerolog.Logger) bool {
	return check(ctx, a, spoolRoot, out, log, nil)
}

// check runs the steps of Check, then more, if not nil, after STAT.
func check(ctx context.Context, a *config.Account, spoolRoot string, out io.Writer, log zerolog.Logger, more func(*checker) bool) bool {
	ck := &checker{ctx: ctx, a: a, out: out, log: log, more: more, spoolRoot: spoolRoot}
	fmt.Fprintf(out, "account %s: %s as %s, tls = %s\n", a.Name, a.Server, a.Username, a.TLS)
	ok := ck.run()
	if ck.c != nil {
		ck.c.Quit() // the verdict is in; a failing QUIT changes nothing
	} else if ck.conn != nil {
		ck.conn.Close()
	}
	return ok
}

type checker struct {
	ctx  context.Context
	a    *config.Account
	out  io.Writer
	conn net.Conn
	c    *pop3.Client
	opts pop3.Options
	more func(*checker) bool // a step after STAT, if any (CheckList)
	log  zerolog.Logger
	// spoolRoot is the spool, for built-in OAuth's token cache.
	spoolRoot string
}

func (ck *checker) ok(step, format string, args ...any) {
	fmt.Fprintf(ck.out, "  %-10s ok %s\n", step+":", fmt.Sprintf(format, args...))
}

// failed prints the failing step and returns false.
func (ck *checker) failed(step string, ev event.ID, what, todo string) bool {
	fmt.Fprintf(ck.out, "  %-10s FAILED: %s — %s (event %d)\n", step+":", what, todo, ev)
	return false
}

func (ck *checker) run() bool {
	host, port, err := net.SplitHostPort(ck.a.Server)
	if err != nil {
		return ck.failed("resolve", event.ConnectFailed, err.Error(), "set server to host:port")
	}
	opts, err := dialOptions(ck.a)
	if err != nil {
		return ck.failed("tls", event.TLSFailed, err.Error(), "check ca_file")
	}
	opts.TLSConfig.ServerName = host
	opts.Trace = transcript(&ck.log, ck.a)
	ck.opts = opts
	return ck.resolve(host) && ck.connect(host, port) && ck.secure() && ck.capabilities() && ck.login() && ck.stat() &&
		(ck.more == nil || ck.more(ck))
}

func (ck *checker) resolve(host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		ck.ok("resolve", "%s is an address", host)
		return true
	}
	ctx, cancel := context.WithTimeout(ck.ctx, ck.opts.Timeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return ck.failed("resolve", event.NameUnresolved, err.Error(), "check the server name in the config and this machine's DNS")
	}
	ck.ok("resolve", "%s is %s", host, strings.Join(addrs, ", "))
	return true
}

func (ck *checker) connect(host, port string) bool {
	d := net.Dialer{Timeout: ck.opts.Timeout}
	conn, err := d.DialContext(ck.ctx, "tcp", ck.a.Server)
	if err != nil {
		return ck.failed("connect", event.ConnectFailed, err.Error(),
			"check the port (995 for tls = implicit, 110 for starttls or none) and any firewall between here and the server")
	}
	ck.conn = conn
	ck.ok("connect", "TCP connection to %s", conn.RemoteAddr())
	if ck.a.TLS != "implicit" {
		return ck.greeting()
	}
	tc := tls.Client(conn, ck.opts.TLSConfig)
	_ = tc.SetDeadline(time.Now().Add(ck.opts.Timeout)) // the handshake reports a dead connection
	if err := tc.HandshakeContext(ck.ctx); err != nil {
		return ck.failed("tls", event.TLSFailed, err.Error(), tlsAdvice(err, host))
	}
	ck.conn = tc
	ck.certificate(tc.ConnectionState())
	return ck.greeting()
}

func (ck *checker) greeting() bool {
	o := ck.opts
	o.TLS = pop3.TLSNone // the handshake, if any, is done: NewClient sees a *tls.Conn
	c, err := pop3.NewClient(ck.ctx, ck.conn, o)
	if err != nil {
		ev, _, _ := loginProblem(err)
		return ck.failed("greeting", ev, err.Error(), "this does not look like a POP3 server; check the port and tls")
	}
	ck.c = c
	ck.ok("greeting", "%q", c.Greeting())
	return true
}

// secure runs STLS for tls = "starttls".
func (ck *checker) secure() bool {
	if ck.a.TLS != "starttls" {
		return true
	}
	if err := ck.c.StartTLS(); err != nil {
		host, _, _ := net.SplitHostPort(ck.a.Server)
		return ck.failed("stls", event.TLSFailed, err.Error(), tlsAdvice(err, host))
	}
	state, _ := ck.c.ConnectionState()
	ck.certificate(state)
	return true
}

// certificate prints the TLS line: version, subject, issuer, expiry.
func (ck *checker) certificate(st tls.ConnectionState) {
	step := "tls"
	if ck.a.TLS == "starttls" {
		step = "stls"
	}
	if len(st.PeerCertificates) == 0 {
		ck.ok(step, "%s, no certificate", tls.VersionName(st.Version))
		return
	}
	leaf := st.PeerCertificates[0]
	left := time.Until(leaf.NotAfter)
	ck.ok(step, "%s, certificate %q issued by %q, valid until %s (%d days)", tls.VersionName(st.Version),
		leaf.Subject.String(), leaf.Issuer.String(), leaf.NotAfter.UTC().Format("2006-01-02"), int(left.Hours()/24))
	if left < certWarning {
		fmt.Fprintf(ck.out, "  %-10s warning: the certificate expires in %d days — tell the provider (event %d)\n",
			step+":", int(left.Hours()/24), event.CertExpiring)
	}
}

func tlsAdvice(err error, host string) string {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return "the certificate is not signed by a trusted authority: set ca_file to the authority's PEM, or use the provider's proper host name"
	case errors.As(err, &hn):
		return fmt.Sprintf("the certificate is not valid for %s: use the host name the provider's certificate names", host)
	case errors.As(err, &ci):
		return "the certificate is expired or not yet valid: check this machine's clock, then tell the provider"
	case errors.Is(err, pop3.ErrInsecure):
		return "the server offers no STLS: use tls = implicit (port 995) if it has it; fetchd never falls back to clear text"
	}
	return "check tls (implicit on port 995, starttls on 110) and ca_file"
}

func (ck *checker) capabilities() bool {
	caps, err := ck.c.Capabilities()
	if err != nil {
		return ck.failed("capa", event.ProtocolError, err.Error(), "the server's reply was not understood; report it to the provider")
	}
	if len(caps.Raw) == 0 {
		ck.ok("capa", "none (the server does not support CAPA, RFC 2449)")
		return true
	}
	ck.ok("capa", "%s", strings.Join(caps.Raw, ", "))
	return true
}

func (ck *checker) login() bool {
	caps, err := ck.c.Capabilities()
	if err != nil {
		return ck.failed("login", event.ProtocolError, err.Error(), "the server's reply was not understood")
	}
	f := &Fetcher{Log: zerolog.Nop(), mem: NewMemory(), oauthDir: filepath.Join(ck.spoolRoot, spool.State)}
	s := &session{f: f, a: ck.a, c: ck.c}
	method, err := chooseAuth(ck.a, caps, ck.c)
	if err != nil {
		return ck.failed("login", event.AuthNotOffered, err.Error(), "set auth to a method the server offers")
	}
	err = s.authenticate(method)
	if err != nil && s.retryOAuth(err) {
		err = s.authenticate(method)
	}
	if err != nil {
		return ck.loginFailed(method, err)
	}
	ck.ok("login", "as %s (%s)", ck.a.Username, methodName(method))
	return true
}

func (ck *checker) loginFailed(method string, err error) bool {
	var pe *pollError
	var rev *revokedError
	switch {
	case errors.As(err, &pe) && ck.a.BuiltInOAuth() && errors.As(err, &rev):
		return ck.failed("login", event.OAuthRevoked, err.Error(), "run fetchd oauth login "+ck.a.Name)
	case errors.As(err, &pe) && ck.a.BuiltInOAuth() && errors.Is(err, errNoLogin):
		return ck.failed("login", event.OAuthNoLogin, err.Error(), "run fetchd oauth login "+ck.a.Name)
	case errors.As(err, &pe) && ck.a.BuiltInOAuth():
		return ck.failed("login", event.OAuthFailed, err.Error(), "check the network path to oauth_token_url, oauth_client_id and oauth_client_secret_file")
	case errors.As(err, &pe) && ck.a.OAuth():
		return ck.failed("login", event.TokenFailed, err.Error(), "check token_file or token_command")
	case errors.As(err, &pe):
		return ck.failed("login", event.Secret, err.Error(), "check password_file, password_env or password_command")
	}
	ev, _, todo := loginProblem(err)
	what := err.Error()
	var perr *pop3.Error
	if errors.As(err, &perr) {
		what = fmt.Sprintf("%s as %s refused; the server said: -ERR %s", methodName(method), ck.a.Username,
			strings.TrimSpace("["+perr.Code+"] "+perr.Text))
		if perr.Code == "" {
			what = fmt.Sprintf("%s as %s refused; the server said: -ERR %s", methodName(method), ck.a.Username, perr.Text)
		}
	}
	return ck.failed("login", ev, what, todo)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func methodName(m string) string {
	switch m {
	case "user":
		return "USER/PASS"
	case "apop":
		return "APOP"
	}
	return "AUTH " + strings.ToUpper(m)
}

func (ck *checker) stat() bool {
	n, size, err := ck.c.Stat()
	if err != nil {
		ev, _, _ := loginProblem(err)
		return ck.failed("stat", ev, err.Error(), "the drop listing failed; try again later or report it to the provider")
	}
	if n == 0 {
		ck.ok("stat", "0 messages (0 octets): the mailbox is empty — if mail is expected, check that this is the right mailbox and that no other program fetches from it")
		return true
	}
	ck.ok("stat", "%d %s (%d octets)", n, plural(n, "message", "messages"), size)
	return true
}
