package pop3

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// plainClient is SASL PLAIN (RFC 4616), as go-sasl would do it.
type plainClient struct{ user, pass string }

func (p plainClient) Start() (string, []byte, error) {
	return "PLAIN", []byte("\x00" + p.user + "\x00" + p.pass), nil
}
func (p plainClient) Next([]byte) ([]byte, error) { return nil, errors.New("unexpected challenge") }

// echoClient answers each challenge with "re:" + challenge, or fails on "boom".
type echoClient struct{}

func (echoClient) Start() (string, []byte, error) { return "X-ECHO", nil, nil }
func (echoClient) Next(c []byte) ([]byte, error) {
	if string(c) == "boom" {
		return nil, errors.New("mechanism gave up")
	}
	return append([]byte("re:"), c...), nil
}

func TestLoginRefusedInClear(t *testing.T) {
	fs := serve(t, greet, step{c: "QUIT", s: "+OK\r\n"})
	o := clearOpts()
	o.AllowPlaintext = false
	c := dial(t, fs, o)
	for name, err := range map[string]error{
		"Login": c.Login("bob", "pw"),
		"APOP":  c.APOP("bob", "pw"),
		"Auth":  c.Auth(plainClient{"bob", "pw"}),
	} {
		if !errors.Is(err, ErrInsecure) {
			t.Errorf("%s in clear = %v, want ErrInsecure", name, err)
		}
	}
	if err := c.Quit(); err != nil { // nothing was sent; the server saw only QUIT
		t.Errorf("Quit: %v", err)
	}
}

func TestAuthPlain(t *testing.T) {
	fs := serve(t, greet,
		step{c: "AUTH PLAIN " + b64("\x00bob\x00hunter2"), s: "+OK welcome\r\n"},
	)
	var tr tracer
	o := clearOpts()
	o.Trace = tr.trace
	c := dial(t, fs, o)
	if err := c.Auth(plainClient{"bob", "hunter2"}); err != nil {
		t.Fatal(err)
	}
	if s := tr.String(); !strings.Contains(s, "C AUTH PLAIN ****") || strings.Contains(s, b64("\x00bob\x00hunter2")) {
		t.Errorf("trace does not mask the initial response:\n%s", s)
	}
}

// TestAuthLongInitialResponse: RFC 5034 §4 caps the AUTH line at 255
// octets, so a longer initial response answers the first empty challenge.
func TestAuthLongInitialResponse(t *testing.T) {
	pass := strings.Repeat("p", 300)
	fs := serve(t, greet,
		step{c: "AUTH PLAIN", s: "+ \r\n"},
		step{c: b64("\x00bob\x00" + pass), s: "+OK\r\n"},
	)
	c := dial(t, fs, clearOpts())
	if err := c.Auth(plainClient{"bob", pass}); err != nil {
		t.Fatal(err)
	}
}

func TestAuthChallenges(t *testing.T) {
	fs := serve(t, greet,
		step{c: "AUTH X-ECHO", s: "+ " + b64("one") + "\r\n"},
		step{c: b64("re:one"), s: "+ " + b64("boom") + "\r\n"},
		step{c: "*", s: "-ERR cancelled\r\n"},
		step{c: "QUIT", s: "+OK\r\n"},
	)
	c := dial(t, fs, clearOpts())
	err := c.Auth(echoClient{})
	if err == nil || !strings.Contains(err.Error(), "mechanism gave up") {
		t.Fatalf("Auth = %v, want the mechanism's error", err)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("Quit after a cancelled AUTH: %v", err)
	}
}

// TestAPOP uses the example of RFC 1939 §7.
func TestAPOP(t *testing.T) {
	fs := serve(t, greet,
		step{c: "APOP mrose c4c9334bac560ecc979e58001b3e22fb", s: "+OK maildrop has 1 message (369 octets)\r\n"},
	)
	c := dial(t, fs, clearOpts())
	if err := c.APOP("mrose", "tanstaaf"); err != nil {
		t.Fatal(err)
	}
}

// TestPasswordEchoedInGarbage: a server that echoes the password in a
// malformed reply must not get it into the error or the trace.
func TestPasswordEchoedInGarbage(t *testing.T) {
	fs := serve(t, greet,
		step{c: "USER bob", s: "+OK\r\n"},
		step{c: "PASS s3cr3t", s: "WHAT s3cr3t\r\n"},
	)
	var tr tracer
	o := clearOpts()
	o.Trace = tr.trace
	c := dial(t, fs, o)
	err := c.Login("bob", "s3cr3t")
	if !errors.Is(err, ErrProtocol) || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("Login = %v, want ErrProtocol without the password", err)
	}
	if strings.Contains(tr.String(), "s3cr3t") {
		t.Errorf("trace leaks the password:\n%s", tr.String())
	}
}

// TestAuthEchoMasked: a server that echoes the password or token after
// AUTH, as it is or in base64, in a challenge or in -ERR, must not get it
// into the error or the trace, whatever the mechanism.
func TestAuthEchoMasked(t *testing.T) {
	const pw = "hunter2secret"
	plainIR := b64("\x00bob\x00" + pw)
	bearerIR := b64("n,a=bob,\x01auth=Bearer " + pw + "\x01\x01")
	for name, c := range map[string]struct {
		mech  SASLClient
		steps []step
	}{
		"PLAIN": {PlainAuth("", "bob", pw), []step{
			{c: "AUTH PLAIN " + plainIR, s: "-ERR [AUTH] no " + pw + " or " + plainIR + " or " + b64(pw) + "\r\n"}}},
		"LOGIN": {LoginAuth("bob", pw), []step{
			{c: "AUTH LOGIN", s: "+ " + b64("Username:") + "\r\n"},
			{c: b64("bob"), s: "+ " + b64("Password:") + "\r\n"},
			{c: b64(pw), s: "-ERR bob: " + pw + " is wrong (" + b64(pw) + ")\r\n"}}},
		"OAUTHBEARER": {OAuthBearer("bob", "", 0, pw), []step{
			{c: "AUTH OAUTHBEARER " + bearerIR, s: "+ " + b64(pw) + "\r\n"},
			{c: b64("\x01"), s: "-ERR token " + pw + "\r\n"}}},
		"foreign PLAIN": {plainClient{"bob", pw}, []step{
			{c: "AUTH PLAIN " + plainIR, s: "-ERR got " + plainIR + "\r\n"}}},
	} {
		t.Run(name, func(t *testing.T) {
			fs := serve(t, append([]step{greet}, c.steps...)...)
			var tr tracer
			o := clearOpts()
			o.Trace = tr.trace
			cl := dial(t, fs, o)
			err := cl.Auth(c.mech)
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("Auth = %v, want a refusal", err)
			}
			for _, leak := range []string{pw, b64(pw), plainIR, bearerIR} {
				if strings.Contains(err.Error(), leak) || strings.Contains(tr.String(), leak) {
					t.Errorf("%q leaks into the error %q or the trace:\n%s", leak, err, tr.String())
				}
			}
			if !strings.Contains(err.Error(), "****") {
				t.Errorf("error %q does not show where the echo was masked", err)
			}
		})
	}
}
