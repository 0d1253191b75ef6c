//go:build unix

package chaos

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/smtpsink"
	"example.org/popspool/spooltest/testcert"
)

// The two ends of a chaos run, each behind its fault proxy: the POP3
// server fetchd fetches from and the SMTP server deliverd delivers to.
// TestChaos runs between the spooltest ones (the flow's own pop3srv and
// smtpsink), TestChaosReal between a private Dovecot and a private
// Postfix (real_test.go).

// pop3Side is the POP3 server.
type pop3Side interface {
	// upstream is the address the POP3 fault proxy forwards to, given
	// the one of the flow's own pop3srv.
	upstream(own string) string
	// login is the account's user name and password ("" for the
	// harness's defaults).
	login() (user, pass string)
	// put adds message i to the mailbox: msg, which the file staged
	// holds.
	put(f *harness.Flow, i int, staged string, msg []byte) error
	// left is how many messages the mailbox holds.
	left(f *harness.Flow) int
	// security is the account's tls ("" for plain), its ca_file, and
	// the certificate the flow's own POP3 server presents, if it is the
	// one.
	security() (mode, caFile string, server *tls.Config)
}

// smtpSide is the SMTP server.
type smtpSide interface {
	addr() string // the address the SMTP fault proxy forwards to
	rcpt() string // the account's recipient ("" for the harness's default)
	// armRcpt arms a 451 to the next RCPT; disarmRcpt disarms it and
	// returns how many were given.
	armRcpt() bool
	disarmRcpt() int
	// armAfterDot has the server drop the reply to the next accepted
	// message (TLS runs, where no proxy finds the final dot); false if
	// it cannot. afterDots is how many it dropped.
	armAfterDot() bool
	afterDots() int
	// queued is how many accepted messages the server has yet to put in
	// a mailbox.
	queued() int
	delivered() (received, error)
	// security is deliver.starttls ("" for the default) and ca_file.
	security() (starttls, caFile string)
}

// received is what the SMTP server delivered.
type received struct {
	msgs     []smtpsink.Message // as the client sent them, for Verify
	problems []string           // the server's own faults: violations, but not popspool's
	figures  string             // a figure line of the server's own, "" if none
}

// sideEnv is what the two servers of a run are made with.
type sideEnv struct {
	faults *Faults
	// cert, in a TLS run, is the certificate the servers started for the
	// run present (spooltest/testcert); nil in a plain run.
	cert *testcert.Cert
	seed int64
}

// spooltestServers are the flow's own POP3 server and an SMTP sink that
// refuses RCPTs itself when armed. In a TLS run the sink offers STARTTLS
// and the POP3 server serves implicit TLS or STLS, by the seed's parity.
func spooltestServers(t *testing.T, env sideEnv) (pop3Side, smtpSide) {
	start := smtpsink.Start
	pop := pop3srvSide{}
	if env.cert != nil {
		start = func() (*smtpsink.Sink, error) { return smtpsink.StartTLS(env.cert.TLSConfig()) }
		pop = pop3srvSide{cert: env.cert, mode: []string{"implicit", "starttls"}[env.seed&1]}
	}
	sink, err := start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	s := &sinkSide{sink: sink, tls: env.cert}
	sink.SetRcptFault(s.rcptFault.hook)
	sink.SetDataFault(s.afterDot.take)
	return pop, s
}

// pop3srvSide is the flow's own POP3 server, serving a folder of files;
// with cert, over TLS (mode: "implicit" or "starttls").
type pop3srvSide struct {
	cert *testcert.Cert
	mode string
}

func (p pop3srvSide) security() (string, string, *tls.Config) {
	if p.cert == nil {
		return "", "", nil
	}
	return p.mode, p.cert.CertFile, p.cert.TLSConfig()
}

func (pop3srvSide) upstream(own string) string { return own }
func (pop3srvSide) login() (string, string)    { return "", "" }

func (pop3srvSide) put(f *harness.Flow, i int, staged string, _ []byte) error {
	return os.Rename(staged, filepath.Join(f.Box, boxName(i))) // names sort in the order put
}

func (pop3srvSide) left(f *harness.Flow) int { return f.Server.Stats().Left }

// sinkSide is the SMTP sink: it keeps what it accepts in memory and has
// nothing queued. With tls it offers STARTTLS, which deliverd must use.
type sinkSide struct {
	sink     *smtpsink.Sink
	tls      *testcert.Cert
	afterDot oneShot
	rcptFault
}

func (s *sinkSide) armAfterDot() bool { return s.afterDot.arm() }
func (s *sinkSide) afterDots() int    { return s.sink.Dropped() }

// oneShot is a fault armed once that fires at its next chance.
type oneShot struct {
	mu    sync.Mutex
	armed bool
}

func (o *oneShot) arm() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	was := o.armed
	o.armed = true
	return !was
}

func (o *oneShot) take() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	was := o.armed
	o.armed = false
	return was
}

func (o *oneShot) disarm() { o.take() }

func (s *sinkSide) security() (string, string) {
	if s.tls == nil {
		return "", ""
	}
	return "required", s.tls.CertFile
}

func (s *sinkSide) addr() string    { return s.sink.Addr }
func (s *sinkSide) rcpt() string    { return "" }
func (s *sinkSide) armRcpt() bool   { return s.arm() }
func (s *sinkSide) disarmRcpt() int { s.afterDot.disarm(); return s.disarm() }
func (s *sinkSide) queued() int     { return 0 }

func (s *sinkSide) delivered() (received, error) {
	r := received{msgs: s.sink.Messages()}
	if s.tls != nil {
		if n := s.sink.TLSMessages(); n != len(r.msgs) {
			r.problems = append(r.problems, fmt.Sprintf("the sink accepted %d messages, only %d of them over TLS", len(r.msgs), n))
		}
		r.figures = fmt.Sprintf("sink over_tls=%d of %d", s.sink.TLSMessages(), len(r.msgs))
	}
	return r, nil
}

// rcptFault makes the sink refuse the next RCPT with a 4xx when armed.
type rcptFault struct {
	mu           sync.Mutex
	armed, fired int
}

func (rf *rcptFault) hook(string) *gosmtp.SMTPError {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if rf.armed == 0 {
		return nil
	}
	rf.armed--
	rf.fired++
	return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "chaos: try again later"}
}

func (rf *rcptFault) arm() bool {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if rf.armed > 0 {
		return false
	}
	rf.armed = 1
	return true
}

func (rf *rcptFault) disarm() int {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	rf.armed = 0
	return rf.fired
}
