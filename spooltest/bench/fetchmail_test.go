//go:build unix

package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fetchmail runs Debian's stock fetchmail once (no daemon mode) against
// the Dovecot account, delivering over SMTP to the Postfix, until every
// message of rn is in the Maildir. The rc follows
// shared/notes/real-servers.md: its own pid and id files (as root it
// ignores FETCHMAILHOME for them), rc mode 0600, sslproto ” and no
// sslcertck for plain (6.4 otherwise insists on STARTTLS), and the test
// certificate with sslcommonname localhost for implicit TLS.
//
// fetchmail does not set TCP_NODELAY and writes each SMTP line on its own,
// so the final "." of every DATA waits for Postfix's delayed ACK (about
// 40 ms on Linux): that is the stock program, and its figures include it.
func (r *rig) fetchmail(b *testing.B, rn *run, bin string) runStats {
	port, tlsOpts := r.dc.Addr, "sslproto '' no sslcertck"
	if rn.transport == "tls" {
		port, tlsOpts = r.dc.TLSAddr, fmt.Sprintf("ssl sslcertfile %q sslcommonname localhost", r.dc.CAFile)
	}
	_, port, _ = strings.Cut(port, ":")
	_, smtpPort, _ := strings.Cut(r.pf.Addr, ":")
	rc := filepath.Join(rn.dir, "fetchmailrc")
	text := fmt.Sprintf(`# fetchmail for the popspool end-to-end benchmark (spooltest/bench)
set no syslog
poll 127.0.0.1 service %s protocol pop3 timeout 60
  user %q there with password %q is %q here
  smtphost 127.0.0.1/%s smtpname %q
  nokeep fetchall
  %s
`, port, popUser, popPass, rcptUser, smtpPort, r.rcpt, tlsOpts)
	if err := os.WriteFile(rc, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	logPath := filepath.Join(rn.dir, "fetchmail.log")
	log, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(bin, "-f", rc, "--pidfile", filepath.Join(rn.dir, "fetchmail.pid"),
		"--idfile", filepath.Join(rn.dir, "fetchids"), "--nodetach", "--nosyslog")
	cmd.Env = append(os.Environ(), "HOME="+rn.dir, "FETCHMAILHOME="+rn.dir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, log, log
	done := make(chan error, 1)

	rn.begin(b)
	if err := cmd.Start(); err != nil {
		b.Fatalf("start fetchmail: %v", err)
	}
	go func() { done <- cmd.Wait() }()
	var exit error
	exited := false
	err = r.waitDelivered(rn.w.n, limitFor(rn.w), func() error {
		if exited {
			return exit
		}
		select {
		case exit = <-done:
			exited = true
			if exit != nil {
				return fmt.Errorf("fetchmail: %w", exit)
			}
		default:
		}
		return nil
	})
	rn.finish(b)
	if !exited {
		select {
		case exit = <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill() // our own child, by pid
			exit = errors.New("did not exit within 30s of the last delivery; killed")
			<-done
		}
	}
	if err == nil && exit != nil {
		err = fmt.Errorf("fetchmail: %w", exit)
	}
	if err != nil {
		b.Fatalf("fetchmail %s: %v; log tail:\n%s", rn.transport, err, fileTail(logPath, 2000))
	}
	notes := ""
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		notes = fmt.Sprintf(" cpu fetchmail=%.2fs", rusageSeconds(ru))
	}
	return runStats{notes: notes}
}

func fileTail(path string, n int) string {
	data, _ := os.ReadFile(path)
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}
