package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

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
// standard output; its standard error goes into the error.
func runTokenCommand(command string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), tokenTimeout)
	defer cancel()
	shell, flag := "/bin/sh", "-c"
	if runtime.GOOS == "windows" {
		shell, flag = "cmd.exe", "/C"
	}
	cmd := exec.CommandContext(ctx, shell, flag, command)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limited{&out, maxToken + 1}, &limited{&errOut, 2048}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("token_command: %w: %s", err, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), nil
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
