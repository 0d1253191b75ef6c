package smtpc

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// transcript records what Options.Trace gets.
type transcript struct {
	mu    sync.Mutex
	lines []string
}

func (tr *transcript) trace(dir byte, line string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.lines = append(tr.lines, string(rune(dir))+" "+line)
}

func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.lines, "\n")
}

const tracePW = "hunter2secret"

// The transcript of a whole session: every command and reply line, the
// body only as a note of its size, AUTH PLAIN's response masked, and the
// password masked where the server echoes it.
func TestTranscriptSession(t *testing.T) {
	plain := base64.StdEncoding.EncodeToString([]byte("\x00bob\x00" + tracePW))
	body := "Subject: private\r\n\r\nthe body itself\r\n"
	script := append([]step{
		{reply: r("220 mx.test ESMTP\r\n")},
		{want: "EHLO ", reply: r("250-mx.test\r\n250 AUTH PLAIN\r\n")},
		{want: strings.ToUpper("AUTH PLAIN " + plain), reply: r("235 2.7.0 welcome " + tracePW + "\r\n")},
	}, transaction(
		step{want: "DATA", reply: r("354 go on\r\n")},
		step{want: ".", reply: r("250 2.0.0 queued\r\n")})...)
	f := newFake(t, script...)
	var tr transcript
	c := fakeDial(t, f, Options{StartTLS: StartTLSNone, Helo: "gw.test", Username: "bob", Password: tracePW, Trace: tr.trace})
	send(t, c, "a@example.org", []string{"b@example.org"}, body)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got := tr.String()
	want := []string{
		"S 220 mx.test ESMTP",
		"C EHLO gw.test", "S 250-mx.test", "S 250 AUTH PLAIN",
		"C AUTH PLAIN ****", "S 235 2.7.0 welcome ****",
		"C MAIL FROM:<a@example.org>", "S 250 ok",
		"C RCPT TO:<b@example.org>", "S 250 ok",
		"C DATA", "S 354 go on",
		fmt.Sprintf("C [message body: %d bytes with the final dot, not traced]", len(body)+len(".\r\n")),
		"S 250 2.0.0 queued",
		"C QUIT", "S 221 bye",
	}
	if w := strings.Join(want, "\n"); got != w {
		t.Errorf("transcript:\n%s\nwant:\n%s", got, w)
	}
	for _, leak := range []string{tracePW, plain, "private", "the body itself"} {
		if strings.Contains(got, leak) {
			t.Errorf("transcript holds %q", leak)
		}
	}
}

// AUTH LOGIN: go-sasl sends the user name with the command and the
// password in answer to the challenge; neither is traced, nor the echo.
func TestTranscriptAuthLogin(t *testing.T) {
	user := base64.StdEncoding.EncodeToString([]byte("bob"))
	login := base64.StdEncoding.EncodeToString([]byte(tracePW))
	f := newFake(t,
		step{reply: r("220 mx.test ESMTP\r\n")},
		step{want: "EHLO ", reply: r("250-mx.test\r\n250 AUTH LOGIN\r\n")},
		step{want: strings.ToUpper("AUTH LOGIN " + user), reply: r("334 UGFzc3dvcmQ6\r\n")},
		step{want: strings.ToUpper(login), reply: r("535 5.7.8 " + login + " is " + tracePW + "\r\n")},
		step{want: "*", reply: r("501 cancelled\r\n")})
	var tr transcript
	_, err := Dial(context.Background(), f.target(), Options{StartTLS: StartTLSNone, Username: "bob", Password: tracePW, Timeouts: quick, Trace: tr.trace})
	if err == nil {
		t.Fatal("Dial succeeded after 535")
	}
	<-waitDone(f)
	got := tr.String()
	for _, want := range []string{"C AUTH LOGIN ****", "S 334 UGFzc3dvcmQ6", "C ****", "S 535 5.7.8 **** is ****"} {
		if !strings.Contains(got, want) {
			t.Errorf("transcript lacks %q:\n%s", want, got)
		}
	}
	for _, leak := range []string{tracePW, login, user} {
		if strings.Contains(got, leak) {
			t.Errorf("transcript holds %q:\n%s", leak, got)
		}
	}
}

// Against go-smtp's server with STARTTLS: the handshake is noted, the
// second EHLO and AUTH come after it, and the password stays out.
func TestTranscriptStartTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	_, tg := startServer(t, func(s *smtp.Server) { s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}} })
	var tr transcript
	c := dial(t, tg, Options{TLSConfig: &tls.Config{RootCAs: pool}, Username: "deliverd", Password: "secret", Trace: tr.trace})
	send(t, c, "a@example.org", []string{"b@example.org"}, testBody)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got := tr.String()
	tlsAt := strings.Index(got, "C [TLS handshake done, TLS 1.3]")
	authAt := strings.Index(got, "C AUTH PLAIN ****")
	if i := strings.Index(got, "C STARTTLS"); i < 0 || tlsAt < i || authAt < tlsAt {
		t.Errorf("want STARTTLS, the handshake note, then AUTH:\n%s", got)
	}
	if strings.Contains(got, "secret") || strings.Contains(got, base64.StdEncoding.EncodeToString([]byte("\x00deliverd\x00secret"))) {
		t.Errorf("transcript holds the password:\n%s", got)
	}
}
