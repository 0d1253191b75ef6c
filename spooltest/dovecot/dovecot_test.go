package dovecot

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// talk sends each command and returns the first reply line of each.
func talk(t *testing.T, conn net.Conn, cmds ...string) []string {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	greet, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("greeting: %v", err)
	}
	out := []string{strings.TrimSpace(greet)}
	for _, c := range cmds {
		if _, err := conn.Write([]byte(c + "\r\n")); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		out = append(out, strings.TrimSpace(line))
	}
	return out
}

func TestStartServesPlainAndTLS(t *testing.T) {
	d := Start(t, map[string]string{"alice": "secret"})
	d.Put(t, "alice", []byte("Subject: one\r\n\r\nbody\r\n"))
	d.Put(t, "alice", []byte("Subject: two\r\n\r\nbody\r\n"))
	if n := d.Count(t, "alice"); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}
	conn, err := net.Dial("tcp", d.Addr)
	if err != nil {
		t.Fatal(err)
	}
	got := talk(t, conn, "USER alice", "PASS wrong", "USER alice", "PASS secret", "STAT", "QUIT")
	conn.Close()
	if !strings.HasPrefix(got[0], "+OK") || !strings.HasPrefix(got[2], "-ERR") || got[5] != "+OK 2 44" {
		t.Fatalf("plain session: %q", got)
	}

	pem, err := os.ReadFile(d.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	for _, host := range []string{"localhost", "127.0.0.1"} {
		tc, err := tls.Dial("tcp", d.TLSAddr, &tls.Config{RootCAs: roots, ServerName: host})
		if err != nil {
			t.Fatalf("implicit TLS as %s: %v", host, err)
		}
		got = talk(t, tc, "USER alice", "PASS secret", "DELE 1", "QUIT")
		tc.Close()
		if got[4] != "+OK Logging out, messages deleted." && !strings.HasPrefix(got[4], "+OK") {
			t.Fatalf("TLS session: %q", got)
		}
	}
	if n := d.Count(t, "alice"); n != 0 {
		t.Fatalf("after two sessions each with DELE 1 and QUIT: Count = %d, want 0", n)
	}
}

func TestSetPassword(t *testing.T) {
	d := Start(t, map[string]string{"bob": "old"})
	d.SetPassword(t, "bob", "new")
	conn, err := net.Dial("tcp", d.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := talk(t, conn, "USER bob", "PASS new", "QUIT")
	if !strings.HasPrefix(got[2], "+OK") {
		t.Fatalf("new password refused: %q", got)
	}
}

// lmtpReply reads one reply, all its lines.
func lmtpReply(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("LMTP reply: %v (so far %q)", err, lines)
		}
		lines = append(lines, strings.TrimRight(line, "\r\n"))
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

// TestLMTPDeliversIntoTheMaildirs: a message taken by LMTP lands in the
// Maildir POP3 serves, one reply per accepted recipient after the final
// dot (RFC 2033 §4.2), an unknown recipient refused at RCPT.
func TestLMTPDeliversIntoTheMaildirs(t *testing.T) {
	d := StartWith(t, map[string]string{"alice": "secret", "bob": "pw"}, Options{LMTP: true})
	conn, err := net.Dial("tcp", d.LMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	say := func(cmd string) string {
		if _, err := conn.Write([]byte(cmd + "\r\n")); err != nil {
			t.Fatal(err)
		}
		return lmtpReply(t, r)
	}
	got := []string{lmtpReply(t, r)}
	for _, c := range []string{"LHLO gw.popspool.test", "MAIL FROM:<s@example.net>", "RCPT TO:<Alice@popspool.test>",
		"RCPT TO:<ghost@popspool.test>", "RCPT TO:<bob+list@popspool.test>", "DATA"} {
		got = append(got, say(c))
	}
	msg := "Subject: by LMTP\r\n\r\nbody\r\n..dot\r\n"
	got = append(got, say(msg+"."), lmtpReply(t, r), say("QUIT"))
	want := []string{"220 ", "250-", "250 ", "250 ", "550 5.1.1 <ghost@popspool.test> ", "250 ", "354 ",
		"250 2.0.0 <Alice@popspool.test> ", "250 2.0.0 <bob+list@popspool.test> ", "221 "}
	for i := range want {
		if i >= len(got) || !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("LMTP session: reply %d is not %q: %q", i, want[i], got)
		}
	}
	for _, u := range []string{"alice", "bob"} {
		m := d.Messages(t, u)
		if len(m) != 1 || string(Body(m[0])) != strings.Replace(msg, "..", ".", 1) {
			t.Fatalf("%s's Maildir: %q", u, m)
		}
	}
	pop, err := net.Dial("tcp", d.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pop.Close()
	if got := talk(t, pop, "USER alice", "PASS secret", "STAT", "QUIT"); !strings.HasPrefix(got[3], "+OK 1 ") {
		t.Fatalf("POP3 does not see the LMTP delivery: %q", got)
	}
}
