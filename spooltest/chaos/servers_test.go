//go:build unix

package chaos

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/smtpsink"
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
}

// smtpSide is the SMTP server.
type smtpSide interface {
	addr() string // the address the SMTP fault proxy forwards to
	rcpt() string // the account's recipient ("" for the harness's default)
	// armRcpt arms a 451 to the next RCPT; disarmRcpt disarms it and
	// returns how many were given.
	armRcpt() bool
	disarmRcpt() int
	// queued is how many accepted messages the server has yet to put in
	// a mailbox.
	queued() int
	delivered() (received, error)
}

// received is what the SMTP server delivered.
type received struct {
	msgs     []smtpsink.Message // as the client sent them, for Verify
	problems []string           // the server's own faults: violations, but not popspool's
	figures  string             // a figure line of the server's own, "" if none
}

// spooltestServers are the flow's own POP3 server and an SMTP sink that
// refuses RCPTs itself when armed.
func spooltestServers(t *testing.T, _ *Faults) (pop3Side, smtpSide) {
	sink, err := smtpsink.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	s := &sinkSide{sink: sink}
	sink.SetRcptFault(s.rcptFault.hook)
	return pop3srvSide{}, s
}

// pop3srvSide is the flow's own POP3 server, serving a folder of files.
type pop3srvSide struct{}

func (pop3srvSide) upstream(own string) string { return own }
func (pop3srvSide) login() (string, string)    { return "", "" }

func (pop3srvSide) put(f *harness.Flow, i int, staged string, _ []byte) error {
	return os.Rename(staged, filepath.Join(f.Box, boxName(i))) // names sort in the order put
}

func (pop3srvSide) left(f *harness.Flow) int { return f.Server.Stats().Left }

// sinkSide is the SMTP sink: it keeps what it accepts in memory and has
// nothing queued.
type sinkSide struct {
	sink *smtpsink.Sink
	rcptFault
}

func (s *sinkSide) addr() string    { return s.sink.Addr }
func (s *sinkSide) rcpt() string    { return "" }
func (s *sinkSide) armRcpt() bool   { return s.arm() }
func (s *sinkSide) disarmRcpt() int { return s.disarm() }
func (s *sinkSide) queued() int     { return 0 }

func (s *sinkSide) delivered() (received, error) {
	return received{msgs: s.sink.Messages()}, nil
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
