package smtpc

import (
	"bufio"
	"io"
	"net"
	"net/textproto"
	"testing"
	"time"
)

// TestWireFixesReplies feeds replies in awkward pieces and reads them
// the way go-smtp does, through net/textproto.
func TestWireFixesReplies(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	w := newWire(client, time.Second)
	go func() {
		defer server.Close()
		buf := make([]byte, 64)
		server.Read(buf) // the EHLO line
		for _, piece := range []string{"2", "50-mx.test hi\r", "\n250-8bitmime\r\n250-size 99", "\r\n250 auth plain\r\n",
			"354\r", "\n", "221\r\n", "250 2.0.0 ok\r\n"} {
			if _, err := io.WriteString(server, piece); err != nil {
				return
			}
		}
	}()
	if _, err := w.Write([]byte("EHLO me.example\r\n")); err != nil {
		t.Fatal(err)
	}
	r := textproto.NewReader(bufio.NewReader(w))
	for _, want := range []struct {
		code int
		msg  string
	}{
		{250, "mx.test hi\n8BITMIME\nSIZE 99\nAUTH plain"}, // keywords only upper-cased
		{354, ""},
		{221, ""},
		{250, "2.0.0 ok"}, // not an EHLO reply: left alone
	} {
		code, msg, err := r.ReadResponse(0)
		if err != nil || code != want.code || msg != want.msg {
			t.Errorf("got %d %q %v, want %d %q", code, msg, err, want.code, want.msg)
		}
	}
}

func TestWireDotTracking(t *testing.T) {
	w := &wire{}
	w.beginData()
	for _, chunk := range []string{"line\r\n..\r\n", "x\r", "\n."} {
		w.remember([]byte(chunk))
		if w.dotSent() {
			t.Fatalf("dotSent after %q", chunk)
		}
	}
	w.remember([]byte("\r\n"))
	if !w.dotSent() {
		t.Fatal("final dot not seen")
	}
	w.beginData()
	w.remember([]byte(".\r\n")) // empty body
	if !w.dotSent() {
		t.Fatal("final dot of an empty body not seen")
	}
}

func TestParseTarget(t *testing.T) {
	good := map[string]Target{
		"smtp://127.0.0.1:25":           {"smtp", "127.0.0.1:25"},
		"smtp://mx.example":             {"smtp", "mx.example:25"},
		"smtps://host":                  {"smtps", "host:465"},
		"lmtp://host":                   {"lmtp", "host:24"},
		"smtp://[::1]":                  {"smtp", "[::1]:25"},
		"lmtp+unix:///run/dovecot/lmtp": {"lmtp+unix", "/run/dovecot/lmtp"},
	}
	for in, want := range good {
		if got, err := ParseTarget(in); err != nil || got != want {
			t.Errorf("ParseTarget(%q) = %v, %v; want %v", in, got, err, want)
		} else if back, _ := ParseTarget(got.String()); back != want {
			t.Errorf("String() %q does not parse back", got.String())
		}
	}
	for _, in := range []string{"imap://h", "smtp://", "smtp://u:p@h", "lmtp+unix://h/x", "smtp://h/x", "smtp://h:port", "lmtp+unix:"} {
		if got, err := ParseTarget(in); err == nil {
			t.Errorf("ParseTarget(%q) = %v, want an error", in, got)
		}
	}
}

func TestAddrLiteral(t *testing.T) {
	for a, want := range map[net.Addr]string{
		&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}: "[127.0.0.1]",
		&net.TCPAddr{IP: net.IPv6loopback}:       "[IPv6:::1]",
		&net.UnixAddr{Name: "/x", Net: "unix"}:   "localhost",
	} {
		if got := addrLiteral(a); got != want {
			t.Errorf("addrLiteral(%v) = %q, want %q", a, got, want)
		}
	}
}
