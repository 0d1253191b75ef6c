//go:build unix

package chaos

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"example.org/popspool/spooltest/dovecot"
	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/postfix"
	"example.org/popspool/spooltest/smtpsink"
	"example.org/popspool/spooltest/testcert"
)

// TestChaosReal is TestChaos between real servers: fetchd fetches from a
// private Dovecot (spooltest/dovecot, its plain POP3 port) and deliverd
// delivers to a private Postfix (spooltest/postfix), each behind the same
// fault proxies. The mailbox is filled during the run through the
// Dovecot user's Maildir; at the end what Postfix put in its Maildir,
// without the lines Postfix added, goes to Verify. Postfix cannot be told
// to refuse an RCPT, so the SMTP proxy answers one with a 451 in its
// place (Faults.ArmRcpt). Postfix itself is never stopped, so it should
// never deliver a queue file twice; if it does, that is reported as such
// and not counted as popspool's duplicate.
//
// It needs root, Dovecot and Postfix; it skips without (fails with
// POPSPOOL_REQUIRE_REAL=1). POPSPOOL_CHAOS_N sets the number of kills
// (default 60: a bounded run for make test), the other variables are
// TestChaos's.
func TestChaosReal(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test skipped in -short mode")
	}
	if err := errors.Join(dovecot.Available(), postfix.Available()); err != nil && os.Getenv(dovecot.RequireEnv) != "1" {
		fmt.Printf("chaos: servers=%s skipped: %s\n", realName, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	dovecot.Require(t)
	postfix.Require(t)
	runChaos(t, mode{name: realName, kills: 60, sides: realServers})
}

const (
	realName = "dovecot+postfix"
	// The POP3 account on Dovecot: the password must appear in no log and
	// no spool file.
	dovecotUser = "chaos"
	dovecotPass = "chaos-dovecot-secret-5f1d"
	// The recipient's Maildir on Postfix.
	postfixUser = "alice"
)

func realServers(t *testing.T, env sideEnv) (pop3Side, smtpSide) {
	dc := dovecot.Start(t, map[string]string{dovecotUser: dovecotPass})
	pf := postfix.Start(t, postfix.Options{Users: []string{postfixUser}})
	return &dovecotSide{t: t, dc: dc}, &postfixSide{pf: pf, faults: env.faults}
}

// dovecotSide is the private Dovecot: its plain POP3 port, one user,
// whose Maildir the run fills; with implicit, its implicit-TLS port.
type dovecotSide struct {
	t        *testing.T
	dc       *dovecot.Dovecot
	implicit bool
}

func (d *dovecotSide) upstream(string) string {
	if d.implicit {
		return d.dc.TLSAddr
	}
	return d.dc.Addr
}

func (d *dovecotSide) security() (string, string, *tls.Config) {
	if d.implicit {
		return "implicit", d.dc.CAFile, nil
	}
	return "", "", nil
}

func (d *dovecotSide) login() (string, string) { return dovecotUser, dovecotPass }

func (d *dovecotSide) put(_ *harness.Flow, _ int, _ string, msg []byte) error {
	d.dc.Put(d.t, dovecotUser, msg) // named after the time and a sequence: Dovecot sorts them in the order put
	return nil
}

func (d *dovecotSide) left(*harness.Flow) int { return d.dc.Count(d.t, dovecotUser) }

// postfixSide is the private Postfix; the RCPT refusal comes from the
// SMTP fault proxy. With cert it offers STARTTLS with it, which deliverd
// must use; the proxy then sees only TLS records and cannot refuse.
type postfixSide struct {
	pf     *postfix.Server
	faults *Faults
	cert   *testcert.Cert
}

func (p *postfixSide) security() (string, string) {
	if p.cert == nil {
		return "", ""
	}
	return "required", p.cert.CertFile
}

func (p *postfixSide) addr() string      { return p.pf.Addr }
func (p *postfixSide) rcpt() string      { return p.pf.Address(postfixUser) }
func (p *postfixSide) armRcpt() bool     { return p.cert == nil && p.faults.ArmRcpt() }
func (p *postfixSide) disarmRcpt() int   { return p.faults.DisarmRcpt() }
func (p *postfixSide) queued() int       { return p.pf.Queued() }
func (p *postfixSide) armAfterDot() bool { return false }
func (p *postfixSide) afterDots() int    { return 0 }

// delivered reads the Maildirs and takes off what Postfix added on top
// (postfix.Body). Each transaction Postfix accepted has its own queue id:
// further copies of one queue id are Postfix delivering its queue file
// again, which is reported and given to Verify once.
func (p *postfixSide) delivered() (received, error) {
	all, err := p.pf.Received()
	if err != nil {
		return received{}, err
	}
	var out received
	copies := map[string]int{}
	files, noID := 0, 0
	addrs := make([]string, 0, len(all))
	for a := range all {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		for _, m := range all[a] {
			files++
			id := postfix.QueueID(m.Data)
			if id == "" {
				noID++
			} else if copies[id]++; copies[id] > 1 {
				continue
			}
			out.msgs = append(out.msgs, smtpsink.Message{Rcpts: []string{a}, Data: postfix.Body(m.Data)})
		}
	}
	redelivered := 0
	for _, id := range sortedKeys(copies) {
		if n := copies[id]; n > 1 {
			redelivered += n - 1
			out.problems = append(out.problems, fmt.Sprintf("Postfix delivered its queue file %s %d times: Postfix's own redelivery (one transaction), not popspool's duplicate, and Postfix was never stopped", id, n))
		}
	}
	if noID > 0 {
		out.problems = append(out.problems, fmt.Sprintf("%d Maildir files without Postfix's Received line", noID))
	}
	out.figures = fmt.Sprintf("postfix maildir_files=%d queue_ids=%d redelivered=%d (copies of one queue file)", files, len(copies), redelivered)
	if p.cert != nil {
		n := strings.Count(p.pf.Log(), "TLS connection established from")
		out.figures += fmt.Sprintf(" tls_sessions=%d", n)
		if n == 0 && len(out.msgs) > 0 {
			out.problems = append(out.problems, "Postfix accepted mail but logged no TLS session")
		}
	}
	return out, nil
}
