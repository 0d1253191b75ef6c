package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"example.org/popspool/spooltest/dovecot"
	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/pop3srv"
	"example.org/popspool/spooltest/postfix"
)

// Issue 13.1, a mixed office through the three daemons: the flow's own
// account delivers into [deliver]'s Maildir, "sales" into a real Postfix
// over SMTP ([target.postfix]), "shared" into a real Dovecot over LMTP
// ([target.dovecot]). Each message reaches its own account's server and
// no other, and deliverd check passes for all three targets.
func TestMixedOfficeTargets(t *testing.T) {
	pf := postfix.Start(t, postfix.Options{})
	dv := dovecot.StartWith(t, map[string]string{"bob": "b", "postmaster": "p"}, dovecot.Options{LMTP: true})
	dir := t.TempDir()
	extra := ""
	boxes := map[string]string{}
	for _, acct := range []struct{ name, target, rcpt string }{
		{"sales", "postfix", pf.Address("carol")},
		{"shared", "dovecot", "bob@popspool.test"},
	} {
		box := filepath.Join(dir, acct.name+"-box")
		os.MkdirAll(box, 0o700)
		srv := &pop3srv.Server{Dir: box, User: acct.name + "@isp.example", Pass: acct.name + "-pw"}
		addr, err := srv.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		pass := filepath.Join(dir, acct.name+".pass")
		os.WriteFile(pass, []byte(srv.Pass+"\n"), 0o600)
		boxes[acct.name] = box
		extra += fmt.Sprintf("[[account]]\nname = %q\nserver = %q\ntls = \"none\"\nallow_plaintext = true\nusername = %q\npassword_file = %q\n"+
			"interval = \"1s\"\ndeliver_to = [%q]\ntarget = %q\n\n", acct.name, addr.String(), srv.User, pass, acct.rcpt, acct.target)
	}
	extra += fmt.Sprintf("[target.postfix]\nurl = \"smtp://%s\"\nhelo = \"gw.popspool.test\"\n\n[target.dovecot]\nurl = \"lmtp://%s\"\nconnections = 2\n", pf.Addr, dv.LMTPAddr)
	f, err := harness.New(filepath.Join(dir, "flow"), bins, harness.Options{Extra: extra})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, m := range []struct{ box, subject string }{
		{f.Box, "office-1"}, {f.Box, "office-2"},
		{boxes["sales"], "sales-1"}, {boxes["sales"], "sales-2"},
		{boxes["shared"], "shared-1"}, {boxes["shared"], "shared-2"},
	} {
		msg := "Return-Path: <s@example.net>\r\nFrom: s@example.net\r\nTo: office@isp.example\r\nSubject: " + m.subject + "\r\n\r\nbody of " + m.subject + "\r\n"
		if err := os.WriteFile(filepath.Join(m.box, m.subject+".eml"), []byte(msg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	startAll(t, f)
	ok := harness.WaitFor(90*time.Second, func() bool {
		got, _ := f.Delivered()
		return len(got) == 2 && pf.Count() == 2 && dv.Count(t, "bob") == 2 && f.Settled()
	})
	if !ok {
		b, _ := os.ReadFile(filepath.Join(f.Logs, "deliverd.log"))
		got, _ := f.Delivered()
		t.Fatalf("Maildir %d, Postfix %d, Dovecot %d of 2 each; spool %v\n%s", len(got), pf.Count(), dv.Count(t, "bob"), f.SpoolFiles(), tail(b, 4000))
	}
	subjects := func(msgs [][]byte) string {
		var out []string
		for _, m := range msgs {
			for _, l := range strings.Split(string(m), "\n") {
				if s, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "Subject: "); ok {
					out = append(out, s)
				}
			}
		}
		slices.Sort(out)
		return strings.Join(out, ",")
	}
	var office [][]byte
	got, _ := f.Delivered()
	for _, m := range got {
		office = append(office, m)
	}
	var sales [][]byte
	pfMsgs, err := pf.Messages(pf.Address("carol"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range pfMsgs {
		sales = append(sales, m.Data)
	}
	for _, c := range []struct{ where, got, want string }{
		{"Maildir ([deliver])", subjects(office), "office-1,office-2"},
		{"Postfix ([target.postfix])", subjects(sales), "sales-1,sales-2"},
		{"Dovecot ([target.dovecot])", subjects(dv.Messages(t, "bob")), "shared-1,shared-2"},
	} {
		if c.got != c.want {
			t.Errorf("%s got %q, want %q", c.where, c.got, c.want)
		}
	}
	if n := f.SpoolFiles(); n["deferred"]+n["badmail"]+n["failed"] != 0 {
		t.Errorf("spool %v", n)
	}

	out, err := exec.Command(filepath.Join(bins, "deliverd"), "check", "-config", f.Config).CombinedOutput()
	t.Logf("deliverd check:\n%s", out)
	if err != nil {
		t.Errorf("deliverd check: %v", err)
	}
	for _, want := range []string{"target default\ndeliver target maildir://", "target dovecot\ndeliver target lmtp://" + dv.LMTPAddr, "target postfix\ndeliver target smtp://" + pf.Addr} {
		if !strings.Contains(string(out), want) {
			t.Errorf("deliverd check lacks %q", want)
		}
	}
}
