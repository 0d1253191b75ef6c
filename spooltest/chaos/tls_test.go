//go:build unix

package chaos

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"example.org/popspool/spooltest/dovecot"
	"example.org/popspool/spooltest/faultproxy"
	"example.org/popspool/spooltest/postfix"
)

// TestChaosTLS is TestChaos with TLS on both legs: fetchd fetches from
// the flow's own POP3 server over implicit TLS or STLS (by the seed's
// parity), deliverd delivers to the SMTP sink with STARTTLS required,
// both verifying the test certificate (spooltest/testcert) from their
// ca_file. The line proxies cannot read TLS, so each leg goes through a
// raw fault proxy (faultproxy.StartRaw) that cuts connections after N
// bytes of either direction or stalls one, N log-uniform from 1 byte up,
// so that cuts land inside the handshake and inside TLS records; and a
// fifth of the kills wait first until the daemon's connection is in its
// handshake, which the proxy holds there (faultproxy.Raw.Hold). The same invariants hold: nothing lost, every duplicate
// covered by a W record, every message sent over TLS.
// POPSPOOL_CHAOS_N sets the number of kills (default 30: a bounded run
// for make test; make chaos N=... a long one), the other variables are
// TestChaos's.
func TestChaosTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test skipped in -short mode")
	}
	runChaos(t, mode{name: "pop3srv+smtpsink/tls", kills: 30, sides: spooltestServers, tls: true})
}

// TestChaosRealTLS is TestChaosTLS between real servers: the private
// Dovecot's implicit-TLS port (its own certificate) and a private Postfix
// offering STARTTLS with the test certificate. The SMTP proxy cannot
// answer an RCPT inside TLS, so this run has no RCPT refusals. Like
// TestChaosReal it needs root, Dovecot and Postfix, skips without and
// fails with POPSPOOL_REQUIRE_REAL=1. Default 20 kills.
func TestChaosRealTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test skipped in -short mode")
	}
	name := realName + "/tls"
	if err := errors.Join(dovecot.Available(), postfix.Available()); err != nil && os.Getenv(dovecot.RequireEnv) != "1" {
		fmt.Printf("chaos: servers=%s skipped: %s\n", name, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	dovecot.Require(t)
	postfix.Require(t)
	runChaos(t, mode{name: name, kills: 20, sides: realTLSServers, tls: true})
}

func realTLSServers(t *testing.T, env sideEnv) (pop3Side, smtpSide) {
	dc := dovecot.Start(t, map[string]string{dovecotUser: dovecotPass})
	pf := postfix.Start(t, postfix.Options{Users: []string{postfixUser}, MainCF: []string{
		"smtpd_tls_cert_file = " + env.cert.CertFile,
		"smtpd_tls_key_file = " + env.cert.KeyFile,
		"smtpd_tls_security_level = may",
		"smtpd_tls_received_header = no", // postfix.Body takes off one Received line
		"smtpd_tls_loglevel = 1",         // "TLS connection established": postfixSide counts them
	}})
	return &dovecotSide{t: t, dc: dc, implicit: true}, &postfixSide{pf: pf, faults: env.faults, cert: env.cert}
}

// The raw proxies' plans. A POP3 client sends little (commands) and gets
// much (the messages); an SMTP client the other way round: N's bound
// follows, so a cut can land anywhere in a session, its first bytes (the
// handshake) as often as any later order of magnitude. About one POP3
// session in five and one SMTP session in five is faulted: fetchd polls
// every second, deliverd connects for each batch.
func pop3Plan(seed int64, rate int) faultproxy.Plan {
	return faultproxy.Plan{Seed: seed, CutUp: 0.08, CutDown: 0.2, Stall: 0.07,
		MaxUp: 8 << 10, MaxDown: 4 << 20, StallMin: 200 * time.Millisecond, StallMax: 2 * time.Second, DownRate: rate}
}

func smtpPlan(seed int64, rate int) faultproxy.Plan {
	return faultproxy.Plan{Seed: seed + 1, CutUp: 0.12, CutDown: 0.05, Stall: 0.05,
		MaxUp: 4 << 20, MaxDown: 8 << 10, StallMin: 200 * time.Millisecond, StallMax: 2 * time.Second, UpRate: rate}
}

// rawFigures is one raw proxy's line of figures.
func rawFigures(st faultproxy.RawStats) string {
	return fmt.Sprintf("conns=%d cuts_up=%d cuts_down=%d stalls=%d (cuts: before_tls=%d in_handshake=%d inside_a_record=%d) unfired=%d handshakes_held=%d",
		st.Conns, st.Cuts[faultproxy.Up], st.Cuts[faultproxy.Down], st.Stalls, st.Plain, st.Handshake, st.InRecord, st.Unfired, st.Holds)
}

// rawProxy is the raw proxy d's connections go through, nil if none.
func (r *run) rawProxy(d string) *faultproxy.Raw {
	switch d {
	case "fetchd":
		return r.rawPOP3
	case "deliverd":
		return r.rawSMTP
	}
	return nil
}

// waitInHandshake has d's raw proxy hold the next TLS handshake (up to
// 2 s before the server's first TLS bytes reach d) and waits up to max
// for d to be in it, so that the kill lands inside the handshake. fetchd
// gets Retrieve Now pressed, so that it connects now and not at its next
// poll or after its back-off; deliverd connects when pickup/ has mail.
func (r *run) waitInHandshake(d string, max time.Duration) {
	p := r.rawProxy(d)
	if p == nil {
		return
	}
	p.Hold(2 * time.Second)
	defer p.Unhold()
	if d == "fetchd" && r.retrieveNow() {
		r.c.ops["retrieve-now"]++
		max += time.Second // fetchd looks for the button every second
	}
	for deadline := time.Now().Add(max); p.Holding() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
}
