package fetch

import (
	"runtime"
	"strings"
	"testing"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
)

// A failing token_command's standard error reaches the log short, on one
// line, and without what looks like a token.
func TestTokenCommandStderrRedacted(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses /bin/sh")
	}
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
	const refresh = "1//0gAbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
	cmd := `printf '\n  refresh failed: {"refresh_token":"` + refresh + `","access_token":"` + jwt + `"} \033[31m` +
		strings.Repeat("x ", 300) + `\nsecond line ` + jwt + `\n' >&2; exit 3`
	_, err := readToken(&config.Account{FetchOptions: config.FetchOptions{TokenCommand: cmd}})
	if err == nil {
		t.Fatal("a failing token_command gave no error")
	}
	msg := err.Error()
	for _, leak := range []string{jwt, refresh, "eyJzdWIi", "0gAbCdEf", "\033", "\n", "second line"} {
		if strings.Contains(msg, leak) {
			t.Errorf("error holds %q: %q", leak, msg)
		}
	}
	if !strings.Contains(msg, "exit status 3") || !strings.Contains(msg, "refresh failed") || !strings.Contains(msg, "[redacted]") {
		t.Errorf("error %q lacks the exit status, the message or the redaction mark", msg)
	}
	if len(msg) > 300 {
		t.Errorf("error is %d bytes long, want it trimmed: %q", len(msg), msg)
	}
}

// password_command gives the login its password, run before each login.
func TestPasswordCommandLogsIn(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses /bin/sh")
	}
	r := newRig(t)
	a := &r.cfg.Account[0]
	a.PasswordFile, a.PasswordCommand = "", "printf 'p\\n'"
	if st, err := r.poll(t); err != nil || st.Fetched != len(r.want) {
		t.Fatalf("poll %+v %v", st, err)
	}
	a.PasswordCommand = "echo locked >&2; exit 1"
	r.srv.Dir = t.TempDir()
	if _, err := r.poll(t); err == nil || len(r.log.events(event.Secret)) != 1 {
		t.Fatalf("failing password_command: %v\n%s", err, r.log)
	}
}
