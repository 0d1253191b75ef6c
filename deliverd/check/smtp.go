package check

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"example.org/popspool/deliverd/queue"
	"example.org/popspool/deliverd/smtpc"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
)

// smtp checks an smtp://, smtps://, lmtp:// or lmtp+unix:// target.
func (ck *checker) smtp(ctx context.Context, d *config.Deliver) bool {
	t, err := smtpc.ParseTarget(d.Target)
	if err != nil {
		fmt.Fprintf(ck.out, "deliver target %s\n", d.Target)
		return ck.failed("target", event.CheckConnect, err.Error(), "set deliver.target to smtp://host:port, smtps://, lmtp:// or lmtp+unix:///path")
	}
	auth := "no AUTH"
	if d.Username != "" {
		auth = "AUTH as " + d.Username
	}
	fmt.Fprintf(ck.out, "deliver target %s, starttls = %s, %s, postmaster %s\n", t, d.StartTLS, auth, d.Postmaster)
	opt, err := dialOptions(d)
	if err != nil {
		return ck.options(err)
	}
	opt.Trace = event.Transcript(ck.log.With().Str("target", t.String()).Logger()) // at level trace, the dialogue
	if !ck.resolve(ctx, t) {
		return false
	}
	adv := &advisor{d: d, t: t}
	ok := true
	smtpc.Probe(ctx, t, opt, "", d.Postmaster, func(s smtpc.ProbeStep) {
		if !ok {
			return // only the first failure counts; QUIT after it is a courtesy
		}
		ok = ck.step(adv, s)
	})
	return ok
}

// options reports a config that cannot become smtpc.Options.
func (ck *checker) options(err error) bool {
	if strings.Contains(err.Error(), "ca_file") {
		return ck.failed("tls", event.CheckTLS, err.Error(), "set deliver.ca_file to a readable PEM file with the server's certificate or its CA")
	}
	return ck.failed("auth", event.CheckAuth, err.Error(), "check deliver.password_file (readable by deliverd's user), deliver.password_env or deliver.password_command")
}

// dialOptions makes the smtpc options deliverd uses for d (helo, STARTTLS
// mode, ca_file, AUTH and its password), with the check's time-outs.
func dialOptions(d *config.Deliver) (smtpc.Options, error) {
	opt, err := queue.SMTPOptions(d)
	opt.Timeouts = smtpc.Timeouts{Connect: connectTimeout, Greeting: commandTimeout, Command: commandTimeout,
		Mail: commandTimeout, Rcpt: commandTimeout}
	return opt, err
}

func (ck *checker) resolve(ctx context.Context, t smtpc.Target) bool {
	if t.Scheme == "lmtp+unix" {
		ck.ok("resolve", "unix socket %s, no name to resolve", t.Addr)
		return true
	}
	host, _, err := net.SplitHostPort(t.Addr)
	if err != nil {
		return ck.failed("resolve", event.CheckUnresolved, err.Error(), "set deliver.target to scheme://host:port")
	}
	if ip := net.ParseIP(host); ip != nil {
		ck.ok("resolve", "%s is an address", host)
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return ck.failed("resolve", event.CheckUnresolved, err.Error(),
			"check the host name in deliver.target and this machine's DNS (/etc/hosts, resolv.conf); an address such as 127.0.0.1 needs no DNS")
	}
	ck.ok("resolve", "%s is %s", host, strings.Join(addrs, ", "))
	return true
}

// step prints one step of the probe; false when it failed.
func (ck *checker) step(adv *advisor, s smtpc.ProbeStep) bool {
	name := strings.ToLower(s.Name)
	if s.Err != nil {
		ev, what, todo := adv.advise(s)
		return ck.failed(name, ev, what, todo)
	}
	switch {
	case s.Name == "connect":
		ck.ok(name, "connected to %s", s.Text)
	case s.TLS != nil:
		ck.ok(name, "%s", certificate(*s.TLS))
	case s.Skipped != "":
		ck.ok(name, "%s", s.Skipped)
	case s.Name == "AUTH":
		ck.ok(name, "%s as %s: %s", s.Mechanism, adv.d.Username, reply(s))
	case s.Name == "EHLO" || s.Name == "LHLO":
		first, _, _ := strings.Cut(s.Text, "\n")
		exts := "no extensions"
		if len(s.Extensions) > 0 {
			exts = "extensions: " + strings.Join(s.Extensions, ", ")
		}
		ck.ok(name, "%d %s; %s", s.Code, first, exts)
	default:
		ck.ok(name, "%s", reply(s))
	}
	return true
}

// certificate describes the TLS session: version, subject, issuer, expiry.
func certificate(st tls.ConnectionState) string {
	if len(st.PeerCertificates) == 0 {
		return tls.VersionName(st.Version) + ", no certificate"
	}
	leaf := st.PeerCertificates[0]
	return fmt.Sprintf("%s, certificate %q issued by %q verified, valid until %s", tls.VersionName(st.Version),
		leaf.Subject.String(), leaf.Issuer.String(), leaf.NotAfter.UTC().Format("2006-01-02"))
}

// reply is the server's reply on one line.
func reply(s smtpc.ProbeStep) string {
	text := strings.ReplaceAll(s.Text, "\n", " / ")
	return strings.Join(strings.Fields(fmt.Sprintf("%d %s %s", s.Code, s.Enhanced, text)), " ")
}
