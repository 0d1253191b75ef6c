package pop3

import (
	"strings"
	"testing"
)

// TestXOAuth2TwoStep is Microsoft 365's login: a token too long for the
// 255-octet AUTH line goes on a continuation line after "+ " (RFC 5034 §4).
func TestXOAuth2TwoStep(t *testing.T) {
	token := strings.Repeat("t", 1500)
	ir := "user=office@contoso.com\x01auth=Bearer " + token + "\x01\x01"
	fs := serve(t, greet,
		step{c: "AUTH XOAUTH2", s: "+ \r\n"},
		step{c: b64(ir), s: "+OK User successfully authenticated.\r\n"},
	)
	var tr tracer
	o := clearOpts()
	o.Trace = tr.trace
	c := dial(t, fs, o)
	if err := c.Auth(XOAuth2("office@contoso.com", token)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tr.String(), token[:40]) || strings.Contains(tr.String(), b64(ir)[:40]) {
		t.Errorf("trace shows the token:\n%s", tr.String())
	}
}

// TestXOAuth2Refused: the server's JSON error challenge is answered with an
// empty line, and its -ERR comes back as the error.
func TestXOAuth2Refused(t *testing.T) {
	ir := "user=bob\x01auth=Bearer tok\x01\x01"
	fs := serve(t, greet,
		step{c: "AUTH XOAUTH2 " + b64(ir), s: "+ " + b64(`{"status":"401","schemes":"bearer"}`) + "\r\n"},
		step{then: func(s *session) bool { // the empty answer, which step.c cannot express
			line, err := s.readLine()
			if err != nil || line != "" {
				t.Errorf("after the error challenge: got %q %v, want an empty line", line, err)
				return false
			}
			_, err = s.conn.Write([]byte("-ERR [AUTH] Authentication failure\r\n"))
			return err == nil
		}},
	)
	c := dial(t, fs, clearOpts())
	err := c.Auth(XOAuth2("bob", "tok"))
	if pe, ok := err.(*Error); !ok || pe.Code != "AUTH" {
		t.Fatalf("Auth = %v, want -ERR [AUTH]", err)
	}
}

func TestOAuthBearer(t *testing.T) {
	ir := "n,a=a=3Db=2Cc,\x01host=pop.test\x01port=995\x01auth=Bearer tok\x01\x01"
	fs := serve(t, greet,
		step{c: "AUTH OAUTHBEARER " + b64(ir), s: "+ " + b64(`{"status":"invalid_token"}`) + "\r\n"},
		step{c: b64("\x01"), s: "-ERR [AUTH] invalid token\r\n"},
		step{c: "AUTH OAUTHBEARER " + b64(ir), s: "+OK\r\n"},
	)
	c := dial(t, fs, clearOpts())
	if err := c.Auth(OAuthBearer("a=b,c", "pop.test", 995, "tok")); err == nil {
		t.Fatal("refused token accepted")
	}
	if err := c.Auth(OAuthBearer("a=b,c", "pop.test", 995, "tok")); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
}

func TestLoginMechanism(t *testing.T) {
	fs := serve(t, greet,
		step{c: "AUTH LOGIN", s: "+ " + b64("Username:") + "\r\n"},
		step{c: b64("bob"), s: "+ " + b64("Password:") + "\r\n"},
		step{c: b64("hunter2"), s: "+OK\r\n"},
	)
	c := dial(t, fs, clearOpts())
	if err := c.Auth(LoginAuth("bob", "hunter2")); err != nil {
		t.Fatal(err)
	}
}

func TestPlainMechanism(t *testing.T) {
	fs := serve(t, greet, step{c: "AUTH PLAIN " + b64("\x00bob\x00hunter2"), s: "+OK\r\n"})
	c := dial(t, fs, clearOpts())
	if err := c.Auth(PlainAuth("", "bob", "hunter2")); err != nil {
		t.Fatal(err)
	}
}
