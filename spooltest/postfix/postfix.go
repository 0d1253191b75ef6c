// Package postfix starts a private Postfix instance for tests: Debian's
// postfix package run by hand (`postfix -c DIR start`) on a free loopback
// high port, with its own queue, data folder and log, delivering with
// virtual(8) into one Maildir per test address and refusing every other
// recipient at RCPT with 550 5.1.1. Nothing can leave the machine: every
// transport but virtual is error:. See ../shared/notes/real-servers.md.
//
//	pf := postfix.Start(t, postfix.Options{Users: []string{"alice", "bob"}})
//	... deliver to pf.Addr, RCPT TO:<alice@popspool.test> ...
//	msgs := pf.WaitMessages(t, "alice@popspool.test", 1, time.Minute)
//
// It needs root and the postfix package. Start skips the test when either
// is missing, unless POPSPOOL_REQUIRE_REAL=1 (CI sets it), and then fails.
package postfix

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RequireEnv names the variable that turns a skip into a failure.
const RequireEnv = "POPSPOOL_REQUIRE_REAL"

// Options shape the instance. The zero value works.
type Options struct {
	Domain   string   // the one virtual domain; default "popspool.test"
	Users    []string // local parts that have a Maildir; default alice, bob, carol, postmaster
	Hostname string   // myhostname and the SMTP greeting's name; default "mx." + Domain
	// MaxSize is message_size_limit in bytes (announced as SIZE);
	// 0 = Postfix's default of 10240000.
	MaxSize int64
	// MainCF lines are appended to main.cf, overriding what comes before.
	MainCF []string
}

// Server is a running (or stopped) private Postfix.
type Server struct {
	Dir    string // the instance's folder: config, queue, data, mail, maillog
	Addr   string // "127.0.0.1:port" of its smtpd
	Domain string
	Users  []string
	UID    int // owner of the Maildirs (virtual_uid_maps)
	GID    int

	opt     Options
	running bool
}

// Available says why a private Postfix cannot run here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: Postfix's master must start as root")
	}
	for _, p := range []string{"/usr/sbin/postfix", "/usr/lib/postfix/sbin/master", "/usr/lib/postfix/sbin/virtual"} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("postfix is not installed (%s missing; apt-get install postfix)", p)
		}
	}
	return nil
}

// Require skips tb when Postfix cannot run here, or fails it when
// POPSPOOL_REQUIRE_REAL=1.
func Require(tb testing.TB) {
	tb.Helper()
	err := Available()
	if err == nil {
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("real Postfix required (%s=1) but unavailable: %v", RequireEnv, err)
	}
	tb.Skipf("skipping real-Postfix test: %v", err)
}

// Start makes and starts an instance in a fresh folder; it is stopped and
// removed when tb ends (the folder is kept, and its log printed, when tb
// failed).
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	Require(tb)
	dir, err := os.MkdirTemp("", "popspool-postfix-")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(dir, o)
	if err == nil {
		err = s.Start()
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("postfix: %v", err)
		}
		if tb.Failed() {
			tb.Logf("postfix: folder kept: %s; maillog tail:\n%s", dir, tail(s.Log(), 40))
			return
		}
		_ = os.RemoveAll(dir) // a leftover temp folder is harmless
	})
	if err != nil {
		tb.Fatalf("postfix: %v", err)
	}
	return s
}

// New writes the instance's configuration into dir (which must exist) and
// picks a free port. It starts nothing.
func New(dir string, o Options) (*Server, error) {
	if o.Domain == "" {
		o.Domain = "popspool.test"
	}
	if len(o.Users) == 0 {
		o.Users = []string{"alice", "bob", "carol", "postmaster"}
	}
	if o.Hostname == "" {
		o.Hostname = "mx." + o.Domain
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, Addr: "127.0.0.1:" + strconv.Itoa(port), Domain: o.Domain,
		Users: o.Users, UID: 65534, GID: 65534, opt: o}
	if err := s.layout(); err != nil {
		return nil, fmt.Errorf("postfix set-up in %s: %w", dir, err)
	}
	return s, nil
}

// Start starts the instance and waits until its smtpd answers.
func (s *Server) Start() error {
	if s.running {
		return nil
	}
	if out, err := s.postfix("start"); err != nil {
		return fmt.Errorf("postfix -c %s start: %v\n%s\nmaillog:\n%s", s.Dir, err, out, tail(s.Log(), 20))
	}
	s.running = true
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postfix started but %s does not answer: %v\nmaillog:\n%s", s.Addr, err, tail(s.Log(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop sends SIGTERM to the master (all that `postfix stop` does) and
// waits until every process of this instance is gone, so the port is free
// for a Start again.
//
// The master passes the SIGTERM on to every child, whatever it is doing,
// so a Stop under load behaves as a crash does: a transaction cut before
// cleanup(8) finished leaves a half-written file in queue/incoming (which
// Queued ignores), and a virtual(8) killed after writing a Maildir file
// but before qmgr(8) recorded the delivery leaves the queue file in
// active/, which the next Start delivers again: one message, two copies,
// one QueueID.
func (s *Server) Stop() error {
	if !s.running {
		return nil
	}
	s.running = false
	if pid, err := s.masterPID(); err == nil {
		terminate(pid)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		left := s.processes()
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				kill(p)
			}
			return fmt.Errorf("processes %v of %s did not stop on SIGTERM; killed", left, s.Dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Address returns user@Domain.
func (s *Server) Address(user string) string { return user + "@" + s.Domain }

// Log returns the instance's maillog so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "maillog"))
	return string(b)
}

func (s *Server) postfix(args ...string) ([]byte, error) {
	cmd := exec.Command("/usr/sbin/postfix", append([]string{"-c", s.Dir}, args...)...)
	// Daemons keep inherited pipes open: give them files (real-servers.md).
	out, err := os.CreateTemp(s.Dir, ".postfix-out-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, out, out
	err = cmd.Run()
	b, _ := os.ReadFile(out.Name())
	return b, err
}

func (s *Server) masterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir, "queue", "pid", "master.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sortedKeys is for stable listings.
func sortedKeys(m map[string][]Message) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
