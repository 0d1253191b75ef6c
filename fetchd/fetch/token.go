package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"time"
	"unicode"

	"example.org/popspool/shared/config"
)

// tokenTimeout bounds a token_command.
const tokenTimeout = 30 * time.Second

// maxToken bounds what is read as an access token; real ones are a few
// kilobytes.
const maxToken = 64 << 10

// readToken returns the account's OAuth 2.0 access token, read afresh
// before each login: the file is rewritten, or the command fetches a new
// token, by whatever refreshes it.
func readToken(a *config.Account) (string, error) {
	var raw []byte
	switch {
	case a.TokenFile != "":
		b, err := os.ReadFile(a.TokenFile)
		if err != nil {
			return "", fmt.Errorf("token_file: %w", err)
		}
		raw = b
	case a.TokenCommand != "":
		b, err := runTokenCommand(a.TokenCommand)
		if err != nil {
			return "", err
		}
		raw = b
	default:
		return "", errors.New("no token_file or token_command")
	}
	tok := strings.TrimSpace(string(raw))
	switch {
	case tok == "":
		return "", errors.New("the access token is empty")
	case len(tok) > maxToken || strings.ContainsAny(tok, "\r\n\x00\x01 "):
		return "", errors.New("the access token is not one line of printable text")
	}
	return tok, nil
}

// runTokenCommand runs command with the system shell and returns its
// standard output; the start of its standard error, redacted (see
// helperOutput), goes into the error.
func runTokenCommand(command string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), tokenTimeout)
	defer cancel()
	shell, flag := "/bin/sh", "-c"
	if runtime.GOOS == "windows" {
		shell, flag = "cmd.exe", "/C"
	}
	cmd := exec.CommandContext(ctx, shell, flag, command)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limited{&out, maxToken + 1}, &limited{&errOut, maxStderr}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("token_command: %w: %s", err, helperOutput(errOut.String()))
	}
	return out.Bytes(), nil
}

// maxStderr bounds what is read of a token_command's standard error, and
// maxShown what of it reaches the log.
const (
	maxStderr = 2048
	maxShown  = 200
)

// tokenish matches what may be a credential: a run of 20 or more
// characters of the base64, base64url, hex and JWT alphabets.
var tokenish = regexp.MustCompile(`[A-Za-z0-9+/=._~-]{20,}`)

// helperOutput makes a helper's standard error fit for the log: the first
// non-empty line, control characters replaced, anything that looks like a
// token replaced by "[redacted]", cut to maxShown bytes. A refresh tool
// that fails may print the refresh token or the response that held it.
func helperOutput(s string) string {
	line := ""
	for l := range strings.Lines(s) {
		if line = strings.TrimSpace(l); line != "" {
			break
		}
	}
	line = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, line)
	line = tokenish.ReplaceAllString(line, "[redacted]")
	if len(line) > maxShown {
		line = strings.ToValidUTF8(line[:maxShown], "") + " ..."
	}
	if line == "" {
		return "(no message on standard error)"
	}
	return line
}

// limited keeps the first n bytes written and drops the rest.
type limited struct {
	b *bytes.Buffer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
