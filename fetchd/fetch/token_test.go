package fetch

import (
	"runtime"
	"strings"
	"testing"

	"example.org/popspool/shared/config"
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

func TestHelperOutput(t *testing.T) {
	for in, want := range map[string]string{
		"":                                   "(no message on standard error)",
		"\n\n":                               "(no message on standard error)",
		"no network\nmore":                   "no network",
		"bad\tgrant ya29.a0AfH6SMBx3kQ-long": "bad grant [redacted]",
		"short abc123 ok":                    "short abc123 ok",
	} {
		if got := helperOutput(in); got != want {
			t.Errorf("helperOutput(%q) = %q, want %q", in, got, want)
		}
	}
}
