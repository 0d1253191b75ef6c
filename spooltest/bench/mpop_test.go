//go:build unix

package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mpop runs Debian's mpop once against the Dovecot account over rn's
// transport (plain, or implicit TLS with the test certificate as trust
// file), delivering into the same
// Maildir popspool's Maildir runs use, with keep off: the tool a user
// without a mail server would pick instead of popspool (issue 12). mpop
// writes each message into tmp/, fsyncs it and links it into new/; it
// does not fsync the folder.
func (r *rig) mpop(b *testing.B, rn *run, bin string) runStats {
	addr, tlsLines := r.dc.TLSAddr, "tls on\ntls_starttls off\ntls_trust_file "+r.dc.CAFile
	if rn.transport == "plain" {
		addr, tlsLines = r.dc.Addr, "tls off"
	}
	_, port, _ := strings.Cut(addr, ":")
	md := r.pf.MaildirOf(r.rcpt)
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			b.Fatal(err)
		}
	}
	rc := filepath.Join(rn.dir, "mpoprc")
	text := fmt.Sprintf(`# mpop for the popspool end-to-end benchmark (spooltest/bench)
account bench
host 127.0.0.1
port %s
%s
auth user
user %s
password %s
delivery maildir %s
keep off
uidls_file %s
`, port, tlsLines, popUser, popPass, md, filepath.Join(rn.dir, "uidls"))
	if err := os.WriteFile(rc, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "--file="+rc, "--quiet", "bench")
	cmd.Env = append(os.Environ(), "HOME="+rn.dir)
	rn.begin(b)
	out, err := cmd.CombinedOutput()
	if err == nil {
		err = r.waitDelivered(rn.w.n, limitFor(rn.w), func() error { return nil })
	}
	rn.finish(b)
	if err != nil {
		b.Fatalf("mpop: %v\n%s", err, out)
	}
	return runStats{}
}
