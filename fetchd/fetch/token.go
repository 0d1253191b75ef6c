package fetch

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"example.org/popspool/shared/config"
)

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
		b, err := config.RunHelper("token_command", a.TokenCommand)
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
	case len(tok) > config.MaxHelperOutput || strings.ContainsAny(tok, "\r\n\x00\x01 "):
		return "", errors.New("the access token is not one line of printable text")
	}
	return tok, nil
}
