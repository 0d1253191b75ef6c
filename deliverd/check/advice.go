package check

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"syscall"

	"example.org/popspool/deliverd/smtpc"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
)

// advisor turns a failed step into its event, what was seen and what to
// do about it.
type advisor struct {
	d *config.Deliver
	t smtpc.Target
}

func (a *advisor) advise(s smtpc.ProbeStep) (event.ID, string, string) {
	switch {
	case s.Name == "connect":
		return event.CheckConnect, cause(s.Err), a.connectAdvice(s.Err)
	case s.Name == "tls":
		return event.CheckTLS, cause(s.Err), a.tlsAdvice(s.Err)
	case s.Code == 421 || s.Code == 0 && broken(s.Err):
		return event.CheckSession, a.brokenWhat(s), a.brokenAdvice(s)
	}
	switch s.Name {
	case "greeting", "EHLO", "LHLO":
		return event.CheckGreeting, said(s), a.helloAdvice(s)
	case "STARTTLS":
		return event.CheckTLS, a.starttlsWhat(s), "enable TLS on the server (Postfix: smtpd_tls_security_level = may with smtpd_tls_cert_file and smtpd_tls_key_file), or, on a link nobody can listen to, set deliver.starttls = \"none\""
	case "AUTH":
		return a.authAdvice(s)
	case "MAIL", "RCPT":
		if s.Code == 530 {
			return event.CheckAuthRequired, said(s), a.authRequiredAdvice(s)
		}
		if s.Name == "MAIL" {
			return event.CheckSender, said(s) + " (to MAIL FROM:<>, the null sender)",
				"deliverd sends delivery status notifications from <>, which RFC 5321 §4.5.5 says a server must take: allow the null sender in the server's sender restrictions and read its log for the rule that refused it"
		}
		return event.CheckRecipient, said(s) + fmt.Sprintf(" (to RCPT TO:<%s>)", a.d.Postmaster), a.rcptAdvice(s)
	}
	return event.CheckSession, said(s), "the server did not answer " + s.Name + " as RFC 5321 asks; read its log, and report it if deliveries fail too"
}

// cause is the error without smtpc's "smtpc: op:" prefix.
func cause(err error) string { return inner(err).Error() }

// inner is the error under *smtpc.Error, which itself passes for a
// net.Error (it has Timeout and Temporary).
func inner(err error) error {
	var se *smtpc.Error
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}

// said quotes the server's refusal.
func said(s smtpc.ProbeStep) string {
	if s.Code == 0 {
		return cause(s.Err)
	}
	return "the server said: " + reply(s)
}

func (a *advisor) connectAdvice(err error) string {
	var ne net.Error
	switch {
	case a.t.Scheme == "lmtp+unix":
		return "check the socket path in deliver.target, that the LMTP server runs (Dovecot: service lmtp { unix_listener ... }) and that deliverd's user may open the socket"
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "refused"):
		return fmt.Sprintf("nothing listens on %s: start the mail server (systemctl status postfix), or fix the port in deliver.target (%s)", a.t.Addr, portHint(a.t.Scheme))
	case errors.As(inner(err), &ne) && ne.Timeout():
		return fmt.Sprintf("no answer within %s: a firewall drops the connection, or the host in deliver.target is wrong", connectTimeout)
	}
	return "check deliver.target, the network between here and the server, and any firewall"
}

func portHint(scheme string) string {
	switch scheme {
	case "smtps":
		return "smtps:// is usually port 465"
	case "lmtp":
		return "LMTP is usually port 24"
	}
	return "SMTP is port 25, submission 587"
}

func (a *advisor) tlsAdvice(err error) string {
	host, _, _ := net.SplitHostPort(a.t.Addr)
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return "the server's certificate is not signed by an authority this machine trusts (a self-signed or \"snakeoil\" certificate): set deliver.ca_file to that certificate or its CA, in PEM"
	case errors.As(err, &hn):
		return fmt.Sprintf("the server's certificate is not valid for %s: put a name the certificate lists in deliver.target", host)
	case errors.As(err, &ci):
		return "the server's certificate has expired or is not valid yet: check this machine's clock, then renew the certificate on the server"
	case errors.Is(err, smtpc.ErrInjection):
		return "bytes came after the STARTTLS reply before TLS began (an injection attempt, or a broken proxy): check what sits between here and the server"
	case a.t.Scheme == "smtps":
		return "smtps:// starts TLS at once (port 465); for a server that offers STARTTLS (port 25 or 587) use smtp:// with deliver.starttls"
	}
	return "check the server's TLS set-up and deliver.ca_file"
}

// broken reports a failure of the session itself: I/O, a time-out, a
// reply that is not SMTP or over smtpc's limits.
func broken(err error) bool {
	err = inner(err)
	var ne net.Error
	var pe textproto.ProtocolError
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, smtpc.ErrReplyTooLong) || errors.As(err, &pe) ||
		errors.Is(err, context.Canceled) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (a *advisor) brokenWhat(s smtpc.ProbeStep) string {
	if s.Code == 421 {
		return "the server closed the session: " + reply(s)
	}
	return cause(s.Err)
}

func (a *advisor) brokenAdvice(s smtpc.ProbeStep) string {
	var ne net.Error
	var pe textproto.ProtocolError
	switch {
	case s.Code == 421:
		return "the server is busy, shutting down or limiting connections: try again in a minute and read its log"
	case errors.As(inner(s.Err), &ne) && ne.Timeout():
		return fmt.Sprintf("no reply within %s: the server accepted the connection but hangs (a tarpit, a slow milter or DNS lookup on the server); read its log", commandTimeout)
	case s.Name == "greeting" || errors.As(s.Err, &pe) || errors.Is(s.Err, smtpc.ErrReplyTooLong):
		return fmt.Sprintf("what answers on %s is not an SMTP server (try nc %s), or smtp:// points at a TLS port (use smtps:// for 465)",
			a.t.Addr, strings.Replace(a.t.Addr, ":", " ", 1))
	}
	return "the server dropped the connection: read its log around this time"
}

func (a *advisor) helloAdvice(s smtpc.ProbeStep) string {
	switch {
	case s.Name == "greeting" && s.Code/100 == 5:
		return "the server refuses connections from this host: allow it on the server (Postfix: smtpd_client_restrictions, mynetworks; Exchange: the receive connector's remote IP ranges), and check deliver.target names the right server"
	case s.Name == "greeting":
		return "the server did not greet with 220: try again later and read its log"
	case s.Name == "LHLO":
		return "the server refused LHLO: an SMTP server wants smtp://, an LMTP server (Dovecot, Cyrus) lmtp://; check deliver.target"
	}
	return "the server refused EHLO: check deliver.helo (many servers refuse a name that is not a fully qualified domain name, or their own), and that deliver.target is an SMTP (not LMTP) server"
}

func (a *advisor) starttlsWhat(s smtpc.ProbeStep) string {
	if errors.Is(s.Err, smtpc.ErrNoStartTLS) && s.Code == 0 {
		return "the server does not offer STARTTLS and deliver.starttls = \"required\""
	}
	return "the server refused STARTTLS: " + reply(s)
}

func (a *advisor) authAdvice(s smtpc.ProbeStep) (event.ID, string, string) {
	switch {
	case errors.Is(s.Err, smtpc.ErrInsecureAuth):
		return event.CheckAuth, "the password would go in clear text to a server that is not on this machine",
			"set deliver.starttls = \"required\" (with deliver.ca_file for its certificate) or use smtps://; deliverd never sends a password unencrypted over the network"
	case errors.Is(s.Err, smtpc.ErrNoAuthMech):
		return event.CheckAuth, "the server offers neither AUTH PLAIN nor AUTH LOGIN (after STARTTLS, if any)",
			"enable SASL AUTH on the server (Postfix: smtpd_sasl_auth_enable = yes), or remove deliver.username if the server takes mail from this host without it"
	case s.Code == 0:
		return event.CheckAuth, cause(s.Err), "the AUTH exchange failed; read the server's log"
	}
	return event.CheckAuth, fmt.Sprintf("AUTH %s as %s refused; the server said: %s", s.Mechanism, a.d.Username, reply(s)),
		"check deliver.username and the password in deliver.password_file or deliver.password_env (the check never shows it); the server's log says which was wrong"
}

// authRequiredAdvice is KB 885685's event 12052, "anonymous access
// disabled": the server wants AUTH before it takes mail from this host.
func (a *advisor) authRequiredAdvice(s smtpc.ProbeStep) string {
	if strings.Contains(strings.ToUpper(s.Text), "STARTTLS") {
		return "the server takes mail only over TLS: set deliver.starttls = \"required\" (and deliver.ca_file for its certificate)"
	}
	if a.d.Username != "" {
		return "AUTH passed but the server still wants authentication: check that deliver.username is allowed to send (Postfix: smtpd_sender_login_maps) and read the server's log"
	}
	return "anonymous access is disabled on the server (KB 885685, event 12052): either set deliver.username and deliver.password_file so deliverd authenticates, or allow this host to send without AUTH (Postfix: mynetworks with permit_mynetworks; Exchange: Anonymous access on the SMTP virtual server or receive connector)"
}

func (a *advisor) rcptAdvice(s smtpc.ProbeStep) string {
	if strings.HasPrefix(s.Enhanced, "5.1.") || strings.Contains(strings.ToLower(s.Text), "unknown") {
		return "the server has no mailbox for the postmaster: set deliver.postmaster to an address it delivers (postmaster@your.domain), or create that mailbox or alias; DSNs go there"
	}
	return fmt.Sprintf("the server does not take mail for %s from this host: allow relay from this host (Postfix: mynetworks; Exchange: the receive connector's anonymous relay), set deliver.username for AUTH, or set deliver.postmaster to an address in a domain the server delivers itself", a.d.Postmaster)
}
