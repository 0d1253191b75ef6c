package config

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"time"
	"unicode"
)

// HelperTimeout bounds a token_command or password_command.
const HelperTimeout = 30 * time.Second

// MaxHelperOutput bounds what is read of a helper's standard output: an
// access token is a few kilobytes, a password less.
const MaxHelperOutput = 64 << 10

// RunHelper runs command, the value of the config key (token_command,
// password_command), with the system shell and returns the start of its
// standard output (at most MaxHelperOutput bytes); the start of its
// standard error, redacted (see helperOutput), goes into the error. It is
// stopped after HelperTimeout.
func RunHelper(key, command string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), HelperTimeout)
	defer cancel()
	shell, flag := "/bin/sh", "-c"
	if runtime.GOOS == "windows" {
		shell, flag = "cmd.exe", "/C"
	}
	cmd := exec.CommandContext(ctx, shell, flag, command)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limited{&out, MaxHelperOutput + 1}, &limited{&errOut, maxStderr}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", key, err, helperOutput(errOut.String()))
	}
	return out.Bytes(), nil
}

// maxStderr bounds what is read of a helper's standard error, and
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
