package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// OAuthLogin is "fetchd oauth login ACCOUNT": the device authorization
// grant (RFC 8628). It prints where to go and the code to enter, waits
// until the user has signed in (or the code expires, or ctx ends), and
// stores the tokens in stateDir's cache for the account, which a running
// fetchd reads before its next login.
func OAuthLogin(ctx context.Context, a *config.Account, stateDir string, out io.Writer, log zerolog.Logger) error {
	return oauthLogin(ctx, a, stateDir, out, log, nil)
}

func oauthLogin(ctx context.Context, a *config.Account, stateDir string, out io.Writer, log zerolog.Logger, client *http.Client) error {
	if !a.BuiltInOAuth() {
		return fmt.Errorf("account %s has no oauth_provider: built-in OAuth is not set up for it (docs/oauth.md)", a.Name)
	}
	if a.DeviceURL == "" {
		return fmt.Errorf("account %s: oauth_device_url is not set, so there is no device-code sign-in", a.Name)
	}
	cfg, err := oauthConfig(a)
	if err != nil {
		return err
	}
	ctx = httpContext(ctx, client)
	start, cancel := context.WithTimeout(ctx, a.Timeout.D())
	da, err := cfg.DeviceAuth(start)
	cancel()
	if err != nil {
		return deviceError("asking for a device code", err)
	}
	fmt.Fprintf(out, "To let fetchd read account %s (%s), sign in as that user:\n\n", a.Name, a.Username)
	fmt.Fprintf(out, "  open   %s\n  enter  %s\n\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(out, "  (or open %s)\n\n", da.VerificationURIComplete)
	}
	if !da.Expiry.IsZero() {
		fmt.Fprintf(out, "The code is valid until %s. Waiting...\n", da.Expiry.Local().Format("15:04 MST"))
	}
	t, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		return deviceError("waiting for the sign-in", err)
	}
	if t.RefreshToken == "" {
		return errors.New("the provider gave no refresh token: add offline_access to oauth_scopes (Microsoft), then run fetchd oauth login again")
	}
	path := CachePath(stateDir, a.Name)
	c := &tokenCache{RefreshToken: t.RefreshToken, AccessToken: t.AccessToken, TokenType: t.TokenType, Expiry: t.Expiry}
	if err := writeCache(spool.OS{}, path, c); err != nil {
		return err
	}
	event.Emit(&log, event.OAuthLoggedIn).Str("account", a.Name).Str("cache", path).Msg("fetchd uses the new authorization at its next poll")
	fmt.Fprintf(out, "Signed in. The refresh token is in %s (mode 0600); fetchd uses it at its next poll.\n", path)
	return nil
}

// deviceError names what went wrong in the device flow, without tokens.
func deviceError(step string, err error) error {
	var re *oauth2.RetrieveError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: the code expired before the sign-in was done: run fetchd oauth login again", step)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: interrupted", step)
	case !errors.As(err, &re):
		return fmt.Errorf("%s: %w", step, err)
	}
	switch re.ErrorCode {
	case "expired_token":
		return fmt.Errorf("%s: the code expired before the sign-in was done: run fetchd oauth login again", step)
	case "access_denied", "authorization_declined":
		return fmt.Errorf("%s: the sign-in was declined (%s)", step, re.ErrorDescription)
	case "invalid_scope", "invalid_client", "unauthorized_client":
		return fmt.Errorf("%s: the provider refused the app: %s %s (check oauth_client_id, oauth_scopes and that the app registration allows public client flows)", step, re.ErrorCode, re.ErrorDescription)
	}
	return fmt.Errorf("%s: the provider answered %s %s", step, re.ErrorCode, re.ErrorDescription)
}

// OAuthImport is "fetchd oauth login -refresh-token-file FILE ACCOUNT":
// for a provider whose device flow does not grant the POP3 scope (Google
// grants https://mail.google.com/ only to other flows), a refresh token
// obtained elsewhere is tried once at the token endpoint and stored.
func OAuthImport(ctx context.Context, a *config.Account, stateDir, refreshToken string, out io.Writer, log zerolog.Logger) error {
	return oauthImport(ctx, a, stateDir, refreshToken, out, log, nil)
}

func oauthImport(ctx context.Context, a *config.Account, stateDir, refreshToken string, out io.Writer, log zerolog.Logger, client *http.Client) error {
	if !a.BuiltInOAuth() {
		return fmt.Errorf("account %s has no oauth_provider: built-in OAuth is not set up for it (docs/oauth.md)", a.Name)
	}
	if refreshToken == "" || strings.ContainsAny(refreshToken, " \t\r\n\x00") {
		return errors.New("the refresh token file must hold one token on one line")
	}
	cfg, err := oauthConfig(a)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(httpContext(ctx, client), a.Timeout.D())
	defer cancel()
	t, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return refreshError(err)
	}
	c := &tokenCache{RefreshToken: t.RefreshToken, AccessToken: t.AccessToken, TokenType: t.TokenType, Expiry: t.Expiry}
	if c.RefreshToken == "" {
		c.RefreshToken = refreshToken
	}
	path := CachePath(stateDir, a.Name)
	if err := writeCache(spool.OS{}, path, c); err != nil {
		return err
	}
	event.Emit(&log, event.OAuthLoggedIn).Str("account", a.Name).Str("cache", path).Msg("refresh token imported; fetchd uses it at its next poll")
	fmt.Fprintf(out, "The refresh token works. It is in %s (mode 0600); fetchd uses it at its next poll. Delete the file it came from.\n", path)
	return nil
}
