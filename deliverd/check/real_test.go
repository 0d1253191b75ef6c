package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.org/popspool/spooltest/dovecot"
	"example.org/popspool/spooltest/postfix"
)

// Tests against a real Postfix and Dovecot (spooltest/postfix,
// spooltest/dovecot): skipped without root or the packages, failed
// instead when POPSPOOL_REQUIRE_REAL=1.

// nothingDelivered asserts the check left no mail in Postfix: no queue
// file, no Maildir file.
func nothingDelivered(t *testing.T, pf *postfix.Server) {
	t.Helper()
	if n, q := pf.Count(), pf.Queued(); n != 0 || q != 0 {
		t.Errorf("the check left %d delivered and %d queued messages in Postfix", n, q)
	}
}

func TestCheckRealPostfix(t *testing.T) {
	// 127.0.0.1 outside mynetworks: Postfix takes mail for its own domain
	// only, so a postmaster elsewhere is a relay it denies.
	pf := postfix.Start(t, postfix.Options{MainCF: []string{"mynetworks = 127.0.0.2/32"}})
	target := `target = "smtp://` + pf.Addr + `"`
	helo := `helo = "gw.popspool.test"`

	r := runCheck(t, loadConfig(t, target, helo, `postmaster = "`+pf.Address("postmaster")+`"`))
	r.passed(t,
		"  greeting:  ok 220 mx.popspool.test ESMTP popspool-test\n",
		"  ehlo:      ok 250 mx.popspool.test; extensions: PIPELINING, SIZE 10240000, ",
		"  mail:      ok 250 2.1.0 Ok\n",
		"  rcpt:      ok 250 2.1.5 Ok\n",
		"  rset:      ok 250 2.0.0 Ok\n",
		"  quit:      ok 221 2.0.0 Bye\n")

	r = runCheck(t, loadConfig(t, target, helo, `postmaster = "postmaster@elsewhere.example"`))
	r.failedWith(t, "  rcpt:      FAILED: the server said: 554 5.7.1 <postmaster@elsewhere.example>: Relay access denied (to RCPT TO:<postmaster@elsewhere.example>) — the server does not take mail for postmaster@elsewhere.example from this host: allow relay", 4037)

	r = runCheck(t, loadConfig(t, target, helo, `postmaster = "`+pf.Address("nobody")+`"`))
	r.failedWith(t, "  rcpt:      FAILED: the server said: 550 5.1.1 <nobody@popspool.test>: Recipient address rejected: User unknown in virtual mailbox table", 4037)
	if !strings.Contains(r.out, "the server has no mailbox for the postmaster") {
		t.Errorf("no advice for an unknown postmaster:\n%s", r.out)
	}
	nothingDelivered(t, pf)
}

// TestCheckRealPostfixTLS: a Postfix that wants STARTTLS before MAIL
// (smtpd_tls_security_level = encrypt) with a self-signed certificate.
func TestCheckRealPostfixTLS(t *testing.T) {
	postfix.Require(t)
	// Postfix's daemons must be able to read the files: not under
	// t.TempDir(), whose parents may be closed to others.
	dir, err := os.MkdirTemp("", "popspool-check-tls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, caFile, keyFile := selfSignedWithKey(t, dir)
	pf := postfix.Start(t, postfix.Options{MainCF: []string{
		"smtpd_tls_cert_file = " + caFile,
		"smtpd_tls_key_file = " + keyFile,
		"smtpd_tls_security_level = encrypt",
	}})
	base := []string{`target = "smtp://` + pf.Addr + `"`, `helo = "gw.popspool.test"`, `postmaster = "` + pf.Address("postmaster") + `"`}

	r := runCheck(t, loadConfig(t, append(base, `starttls = "required"`, `ca_file = "`+caFile+`"`)...))
	r.passed(t, "  starttls:  ok 220 2.0.0 Ready to start TLS\n",
		`  tls:       ok TLS 1.3, certificate "CN=fake.test,O=popspool check test" issued by`,
		"  rcpt:      ok 250 2.1.5 Ok\n")
	if strings.Count(r.out, "  ehlo:") != 2 {
		t.Errorf("want EHLO before and after TLS:\n%s", r.out)
	}

	r = runCheck(t, loadConfig(t, append(base, `starttls = "required"`)...))
	r.failedWith(t, "  tls:       FAILED: tls: failed to verify certificate: x509: certificate signed by unknown authority — the server's certificate is not signed by an authority this machine trusts", 4033)

	r = runCheck(t, loadConfig(t, append(base, `starttls = "none"`)...))
	r.failedWith(t, `  mail:      FAILED: the server said: 530 5.7.0 Must issue a STARTTLS command first — the server takes mail only over TLS: set deliver.starttls = "required"`, 4035)
	nothingDelivered(t, pf)
}

// TestCheckRealDovecotLMTP: LHLO, STARTTLS with Dovecot's own
// certificate, RCPT for a user that exists and one that does not.
func TestCheckRealDovecotLMTP(t *testing.T) {
	dovecot.RequireLMTP(t)
	dc := dovecot.StartWith(t, map[string]string{"postmaster": "pw"}, dovecot.Options{LMTP: true})
	base := []string{`target = "lmtp://` + dc.LMTPAddr + `"`, `helo = "gw.popspool.test"`,
		`starttls = "required"`, `ca_file = "` + dc.CAFile + `"`}

	r := runCheck(t, loadConfig(t, append(base, `postmaster = "postmaster@popspool.test"`)...))
	r.passed(t, "  lhlo:      ok 250 ", "STARTTLS", `  tls:       ok TLS 1.3, certificate "CN=localhost,O=popspool test server"`,
		"  rcpt:      ok 250 2.1.5 OK\n", "  quit:      ok 221 2.0.0 Bye\n")

	r = runCheck(t, loadConfig(t, append(base, `postmaster = "nobody@popspool.test"`)...))
	r.failedWith(t, "  rcpt:      FAILED: the server said: 550 5.1.1 <nobody@popspool.test> User doesn't exist: nobody@popspool.test (to RCPT TO:<nobody@popspool.test>) — the server has no mailbox for the postmaster", 4037)
	if n := dc.Count(t, "postmaster"); n != 0 {
		t.Errorf("the check delivered %d messages", n)
	}
}

// selfSignedWithKey is selfSigned that also writes the key, for a server.
func selfSignedWithKey(t *testing.T, dir string) (string, string, string) {
	t.Helper()
	cert, caFile := selfSigned(t, dir)
	keyFile := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyFile, keyPEM(t, cert), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, caFile, keyFile
}

// TestCheckRealPostfixAUTH: Postfix relays only for clients that
// authenticate (SASL through a Dovecot's auth socket), as a smarthost
// with anonymous relay disabled does.
func TestCheckRealPostfixAUTH(t *testing.T) {
	postfix.Require(t)
	dovecot.Require(t)
	sock, err := os.MkdirTemp("", "popspool-check-sasl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sock) })
	if err := os.Chmod(sock, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sock, "auth")
	dovecot.StartWith(t, map[string]string{"checker": secret}, dovecot.Options{Extra: []string{
		"service auth {\n  unix_listener " + path + " {\n    mode = 0666\n  }\n}",
	}})
	// Postfix's smtpd asks the auth socket before its greeting: a socket
	// not there yet holds the greeting past the check's 5 s.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dovecot's auth socket %s did not appear", path)
		}
	}
	pf := postfix.Start(t, postfix.Options{MainCF: []string{
		"mynetworks = 127.0.0.2/32",
		"smtpd_sasl_auth_enable = yes",
		"smtpd_sasl_type = dovecot",
		"smtpd_sasl_path = " + path,
		"smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
	}})
	base := []string{`target = "smtp://` + pf.Addr + `"`, `helo = "gw.popspool.test"`, `postmaster = "postmaster@elsewhere.example"`}

	// The test Postfix sends nothing off the machine (550 for any other
	// domain once relay is allowed): the good case asks for its own.
	good := []string{base[0], base[1], `postmaster = "` + pf.Address("postmaster") + `"`}
	r := runCheck(t, loadConfig(t, append(good, `username = "checker"`, `password_file = "`+passwordFile(t)+`"`)...))
	r.passed(t, "AUTH PLAIN LOGIN", "  auth:      ok PLAIN as checker: 235 2.7.0 Authentication successful\n", "  rcpt:      ok 250 2.1.5 Ok\n")

	wrong := filepath.Join(t.TempDir(), "wrong.pass")
	if err := os.WriteFile(wrong, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCheck(t, loadConfig(t, append(base, `username = "checker"`, `password_file = "`+wrong+`"`)...))
	r.failedWith(t, "  auth:      FAILED: AUTH PLAIN as checker refused; the server said: 535 5.7.8 Error: authentication failed: ", 4034)
	if strings.Contains(r.out, "not-the-password") {
		t.Errorf("the password is in the output")
	}

	r = runCheck(t, loadConfig(t, base...))
	r.failedWith(t, "  rcpt:      FAILED: the server said: 554 5.7.1 <postmaster@elsewhere.example>: Relay access denied", 4037)
	nothingDelivered(t, pf)
}
