package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/pop3srv"
)

// TestDuplicatesAcrossMailboxes: the same message is in two POP3
// mailboxes (alice's own, and a second one that is delivered to alice and
// carol). With drop_duplicates on, the three daemons, run as processes,
// fetch both copies over POP3 and deliver one copy per recipient into the
// Maildirs: one to alice, one to carol; the second copy's alice is logged
// (3025) and left out. A message without Message-ID in both boxes reaches
// alice twice: it is never dropped.
func TestDuplicatesAcrossMailboxes(t *testing.T) {
	f := newFlow(t)
	box2 := filepath.Join(f.Dir, "pop3-mailbox-2")
	os.MkdirAll(box2, 0o700)
	second := &pop3srv.Server{Dir: box2, User: "second@isp.example", Pass: "second-password"}
	addr, err := second.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	pass := filepath.Join(f.Dir, "second.pass")
	os.WriteFile(pass, []byte(second.Pass+"\n"), 0o600)
	cfg, _ := os.ReadFile(f.Config)
	cfg = append(cfg, fmt.Sprintf(`
[[account]]
name = "second"
server = %q
tls = "none"
allow_plaintext = true
username = %q
password_file = %q
interval = "1s"
deliver_to = ["alice@example.local", "carol@example.local"]

[filter]
drop_duplicates = true
duplicate_window = "1h"
`, addr.String(), second.User, pass)...)
	os.WriteFile(f.Config, cfg, 0o600)

	shared := mail("<shared-1@example.net>", "the shared minutes")
	noID := mail("", "no message-id")
	for name, m := range map[string][]byte{"1-shared.eml": shared, "2-noid.eml": noID, "3-own.eml": mail("<own-1@example.net>", "alice's own")} {
		os.WriteFile(filepath.Join(f.Box, name), m, 0o600)
	}
	for name, m := range map[string][]byte{"1-shared.eml": shared, "2-noid.eml": noID} {
		os.WriteFile(filepath.Join(box2, name), m, 0o600)
	}
	for _, d := range harness.Daemons {
		if err := f.Run(d, 60*time.Second); err != nil {
			t.Fatalf("%s -once: %v", d, err)
		}
	}
	alice, carol := bodies(t, f.UserMaildir()), bodies(t, filepath.Join(f.Mail, "carol"))
	if alice["the shared minutes"] != 1 || alice["no message-id"] != 2 || alice["alice's own"] != 1 || len(alice) != 3 {
		t.Errorf("alice's Maildir: %v; want the shared message once, the one without Message-ID twice, her own once", alice)
	}
	if carol["the shared minutes"] != 1 || carol["no message-id"] != 1 || len(carol) != 2 {
		t.Errorf("carol's Maildir: %v; want the shared message and the one without Message-ID once each", carol)
	}
	log, _ := os.ReadFile(filepath.Join(f.Logs, "rewrited.log"))
	if n := bytes.Count(log, []byte(`"event":3025`)); n != 1 || !bytes.Contains(log, []byte(`"message_id":"<shared-1@example.net>","rcpt":"alice@example.local"`)) {
		t.Errorf("rewrited logged %d 3025 lines, want 1 for alice and <shared-1@example.net>:\n%s", n, log)
	}
	// Which mailbox's copy is routed first decides where alice's drop
	// lands: the copy for alice alone, dropped for every recipient, stays
	// in duplicates/; or the copy for alice and carol goes on to carol
	// only. Nothing else is left.
	n := f.SpoolFiles()
	delete(n, "duplicates")
	if dups := f.SpoolFiles()["duplicates"]; len(n) != 0 || dups > 1 {
		t.Errorf("spool holds %v and %d in duplicates/; want nothing but at most the copy for alice alone in duplicates/", n, dups)
	}
}

func mail(mid, body string) []byte {
	m := "From: Bob <bob@example.net>\r\nTo: alice@example.local, list@example.local\r\nSubject: " + body + "\r\n"
	if mid != "" {
		m += "Message-ID: " + mid + "\r\n"
	}
	return []byte(m + "Return-Path: <bob@example.net>\r\n\r\n" + body + "\r\n")
}

// bodies counts the messages of a Maildir by their last body line.
func bodies(t *testing.T, maildir string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, sub := range []string{"new", "cur"} {
		entries, _ := os.ReadDir(filepath.Join(maildir, sub))
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(maildir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\r\n")
			out[lines[len(lines)-1]]++
		}
	}
	return out
}
