// Package dovecot starts a private Dovecot POP3 server for tests: Debian's
// dovecot-pop3d run by hand (`dovecot -F -c FILE`) on free loopback high
// ports, with its own base_dir, state_dir and log, a certificate generated
// for the test, users from a passwd-file with {PLAIN} passwords, and one
// Maildir per user owned by the system user popspool-test. See
// ../shared/notes/real-servers.md for why each setting is there.
//
//	dc := dovecot.Start(t, map[string]string{"alice": "secret"})
//	dc.Put(t, "alice", msg)
//	... POP3 to dc.Addr (USER/PASS, STLS) or dc.TLSAddr (implicit TLS),
//	    trusting dc.CAFile ...
//	left := dc.Count(t, "alice")
//
// With Options.LMTP it also takes mail by LMTP (RFC 2033) on dc.LMTPAddr
// and delivers it into the same Maildirs, to the user named by the local
// part of the recipient (any domain):
//
//	dc := dovecot.StartWith(t, users, dovecot.Options{LMTP: true})
//	... LMTP to dc.LMTPAddr, RCPT TO:<alice@example.org> ...
//	n := dc.Count(t, "alice")
//
// It needs root and the dovecot-core and dovecot-pop3d packages (and
// dovecot-lmtpd for LMTP). Start skips the test when one is missing,
// unless POPSPOOL_REQUIRE_REAL=1 (CI sets it), and then fails.
package dovecot

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RequireEnv names the variable that turns a skip into a failure.
const RequireEnv = "POPSPOOL_REQUIRE_REAL"

// MailUser is the system user that owns the Maildirs; Start creates it
// (with useradd) when it is missing.
const MailUser = "popspool-test"

// Options shape the instance. The zero value works.
type Options struct {
	// Mechanisms is auth_mechanisms; default "plain login apop".
	Mechanisms string
	// OAuth2URL, when set, adds XOAUTH2 and OAUTHBEARER: an oauth2
	// passdb that checks each token by POSTing it to this RFC 7662
	// introspection URL, which must answer {"active": true, "username":
	// "<user>"} for a good one.
	OAuth2URL string
	// LMTP adds an LMTP listener on a free loopback port (LMTPAddr).
	// A recipient is the user named by its local part, lower-cased and
	// without a "+detail"; mail goes to that user's INBOX. An unknown
	// one is refused at RCPT: "550 5.1.1 <addr> User doesn't exist: addr".
	LMTP bool
	// Extra lines are appended to dovecot.conf, overriding what comes
	// before (e.g. "pop3_logout_format = ...", a second passdb).
	Extra []string
}

// Dovecot is a running private Dovecot.
type Dovecot struct {
	Dir     string // the instance's folder: config, run, state, homes, log
	Addr    string // "127.0.0.1:port": plain POP3, with STLS
	TLSAddr string // "127.0.0.1:port": POP3 over implicit TLS (RFC 8314)
	// LMTPAddr is "127.0.0.1:port", LMTP (with STARTTLS), when
	// Options.LMTP is set; "" otherwise.
	LMTPAddr string
	CAFile   string // PEM of the self-signed certificate it serves (SAN localhost, 127.0.0.1, ::1)
	UID      int    // owner of the Maildirs
	GID      int

	users map[string]string
	opt   Options
	cmd   *exec.Cmd
	exit  chan error
}

// Available says why a private Dovecot cannot run here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: Dovecot's master must start as root")
	}
	for _, p := range []string{"/usr/sbin/dovecot", "/usr/lib/dovecot/pop3", "/usr/lib/dovecot/pop3-login"} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("dovecot is not installed (%s missing; apt-get install dovecot-core dovecot-pop3d)", p)
		}
	}
	return nil
}

// AvailableLMTP is Available for an instance with Options.LMTP.
func AvailableLMTP() error {
	if err := Available(); err != nil {
		return err
	}
	if _, err := os.Stat(lmtpBinary); err != nil {
		return fmt.Errorf("dovecot's LMTP server is not installed (%s missing; apt-get install dovecot-lmtpd)", lmtpBinary)
	}
	return nil
}

const lmtpBinary = "/usr/lib/dovecot/lmtp"

// Require skips tb when Dovecot cannot run here, or fails it when
// POPSPOOL_REQUIRE_REAL=1.
func Require(tb testing.TB) {
	tb.Helper()
	need(tb, Available())
}

// RequireLMTP is Require for an instance with Options.LMTP.
func RequireLMTP(tb testing.TB) {
	tb.Helper()
	need(tb, AvailableLMTP())
}

func need(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("real Dovecot required (%s=1) but unavailable: %v", RequireEnv, err)
	}
	tb.Skipf("skipping real-Dovecot test: %v", err)
}

// Start makes and starts an instance serving users (name -> password) in
// a fresh folder. It is stopped and removed when tb ends (the folder is
// kept, and its log printed, when tb failed).
func Start(tb testing.TB, users map[string]string) *Dovecot {
	tb.Helper()
	return StartWith(tb, users, Options{})
}

// StartWith is Start with options.
func StartWith(tb testing.TB, users map[string]string, o Options) *Dovecot {
	tb.Helper()
	if o.LMTP {
		RequireLMTP(tb)
	} else {
		Require(tb)
	}
	dir, err := os.MkdirTemp("", "popspool-dovecot-")
	if err != nil {
		tb.Fatal(err)
	}
	d := &Dovecot{Dir: dir, users: users, opt: o}
	err = d.start()
	tb.Cleanup(func() {
		if err := d.Stop(); err != nil {
			tb.Errorf("dovecot: %v", err)
		}
		if tb.Failed() {
			tb.Logf("dovecot: folder kept: %s; log tail:\n%s", dir, tail(d.Log(), 40))
			return
		}
		_ = os.RemoveAll(dir) // a leftover temp folder is harmless
	})
	if err != nil {
		tb.Fatalf("dovecot: %v", err)
	}
	return d
}

// start sets up the folder and runs the master, retrying with new ports
// when another process took one of them in the meantime.
func (d *Dovecot) start() error {
	uid, gid, err := mailUser()
	if err != nil {
		return err
	}
	d.UID, d.GID = uid, gid
	if err := d.layout(); err != nil {
		return fmt.Errorf("set-up in %s: %w", d.Dir, err)
	}
	for try := 1; ; try++ {
		err := d.startOnce()
		if err == nil || try == 3 {
			return err
		}
	}
}

func (d *Dovecot) startOnce() error {
	plain, err := freePort()
	if err != nil {
		return err
	}
	secure, err := freePort()
	if err != nil {
		return err
	}
	d.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(plain))
	d.TLSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(secure))
	lmtp := 0
	if d.opt.LMTP {
		if lmtp, err = freePort(); err != nil {
			return err
		}
		d.LMTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lmtp))
	}
	if err := os.WriteFile(d.confPath(), []byte(d.config(plain, secure, lmtp)), 0o600); err != nil {
		return err
	}
	return d.run()
}

// run starts `dovecot -F` (foreground, so this process is the master's
// parent and reaps it) with stdio on a file, and waits until its ports
// answer.
func (d *Dovecot) run() error {
	out, err := os.OpenFile(filepath.Join(d.Dir, "stdio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command("/usr/sbin/dovecot", "-F", "-c", d.confPath())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dovecot: %w", err)
	}
	d.cmd, d.exit = cmd, make(chan error, 1)
	go func() { d.exit <- cmd.Wait() }()
	return d.waitReady(15 * time.Second)
}

func (d *Dovecot) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case err := <-d.exit:
			d.cmd = nil
			return fmt.Errorf("dovecot exited at start (%v); log:\n%s", err, tail(d.Log(), 20))
		default:
		}
		if answers(d.Addr) && answers(d.TLSAddr) && (d.LMTPAddr == "" || answers(d.LMTPAddr)) {
			return nil
		}
		if time.Now().After(deadline) {
			_ = d.Stop()
			return fmt.Errorf("dovecot did not listen on %s within %v; log:\n%s",
				strings.Join(d.addrs(), ", "), limit, tail(d.Log(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *Dovecot) addrs() []string {
	a := []string{d.Addr, d.TLSAddr}
	if d.LMTPAddr != "" {
		a = append(a, d.LMTPAddr)
	}
	return a
}

func answers(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = c.Close() // a probe; Dovecot logs the disconnect
	return true
}

// Stop sends SIGTERM to the master and waits (up to 10 s, then SIGKILL to
// its process group) until it is gone. It may be called more than once.
func (d *Dovecot) Stop() error {
	if d.cmd == nil {
		return nil
	}
	pid := d.cmd.Process.Pid
	d.cmd = nil
	if err := terminate(pid); err != nil && !isGone(err) {
		return fmt.Errorf("stop master %d: %w", pid, err)
	}
	select {
	case <-d.exit:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = killGroup(pid) // its own group: only the master and its children
	<-d.exit
	return fmt.Errorf("master %d did not stop within 10s of SIGTERM; killed", pid)
}

// Log returns Dovecot's log so far.
func (d *Dovecot) Log() string {
	var b strings.Builder
	for _, name := range []string{"dovecot.log", "stdio.log"} {
		data, _ := os.ReadFile(filepath.Join(d.Dir, name)) // missing before the first start
		b.Write(data)
	}
	return b.String()
}

func (d *Dovecot) confPath() string { return filepath.Join(d.Dir, "dovecot.conf") }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
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
