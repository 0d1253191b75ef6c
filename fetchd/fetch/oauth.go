package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// Built-in OAuth (oauth_provider, docs/oauth.md): "fetchd oauth login"
// stores a refresh token in state/oauth-ACCOUNT.json; before each login
// fetchd reads that file afresh (so a login done while it runs is picked
// up), refreshes the access token when less than refreshMargin of it is
// left, and stores the result. The file holds secrets: mode 0600,
// replaced whole (temporary file, fsync, rename, folder fsync), and no
// token ever goes into a log line or an error.

// refreshMargin is how long before its expiry an access token is renewed.
const refreshMargin = 5 * time.Minute

// tokenCache is the content of state/oauth-ACCOUNT.json.
type tokenCache struct {
	RefreshToken string    `json:"refresh_token"`
	AccessToken  string    `json:"access_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// errNoLogin says there is no refresh token to use: no cache, or one
// that cannot be read.
var errNoLogin = errors.New("no OAuth authorization stored yet")

// revokedError is the token endpoint's refusal of the refresh token
// (RFC 6749 §5.2 invalid_grant). It carries the provider's code and
// description, never the token.
type revokedError struct{ code, desc string }

func (e *revokedError) Error() string {
	return strings.TrimSpace("the provider refused the refresh token: " + e.code + " " + e.desc)
}

// CachePath is the token cache of account name under the spool's state/.
func CachePath(stateDir, name string) string {
	return filepath.Join(stateDir, "oauth-"+name+".json")
}

// readCache reads a token cache; a missing file is errNoLogin.
func readCache(path string) (*tokenCache, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoLogin
	}
	if err != nil {
		return nil, fmt.Errorf("%w: OAuth token cache: %w", errNoLogin, err)
	}
	var c tokenCache
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%w: OAuth token cache %s is damaged (%s)", errNoLogin, path, jsonProblem(err))
	}
	if c.RefreshToken == "" {
		return nil, errNoLogin
	}
	return &c, nil
}

// jsonProblem describes a JSON error without quoting the text (a token).
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("not JSON at offset %d", se.Offset)
	}
	return "not the expected fields"
}

// writeCache replaces the cache at path with c, durably, mode 0600.
func writeCache(fs spool.FS, path string, c *tokenCache) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("OAuth token cache: %w", err)
	}
	tmp := path + ".new"
	fs.Remove(tmp) // a leftover of an interrupted write
	f, err := fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("write OAuth token cache: %w", err)
	}
	_, err = fs.Write(f, b)
	if err == nil {
		err = fs.SyncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err != nil {
		fs.Remove(tmp)
		return fmt.Errorf("write OAuth token cache %s: %w", path, err)
	}
	if err := fs.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("fsync %s: %w", filepath.Dir(path), err)
	}
	return nil
}

// oauthConfig is the account's client for golang.org/x/oauth2.
func oauthConfig(a *config.Account) (*oauth2.Config, error) {
	o := &a.OAuthOptions
	secret := ""
	if o.ClientSecretFile != "" {
		b, err := os.ReadFile(o.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("oauth_client_secret_file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	return &oauth2.Config{
		ClientID:     o.ClientID,
		ClientSecret: secret,
		Scopes:       o.Scopes,
		Endpoint: oauth2.Endpoint{
			TokenURL:      o.TokenURL,
			DeviceAuthURL: o.DeviceURL,
			AuthStyle:     oauth2.AuthStyleInParams, // public clients (Microsoft) and Google's both take it
		},
	}, nil
}

// httpContext gives the oauth2 calls client, or a default one.
func httpContext(ctx context.Context, client *http.Client) context.Context {
	if client == nil {
		client = &http.Client{Transport: http.DefaultTransport}
	}
	return context.WithValue(ctx, oauth2.HTTPClient, client)
}

// stateDir is where the token caches live.
func (f *Fetcher) stateDir() string {
	if f.S != nil {
		return f.S.Dir(spool.State)
	}
	return f.oauthDir
}

func (f *Fetcher) fs() spool.FS {
	if f.S != nil {
		return f.S.FS()
	}
	return spool.OS{}
}

// oauthToken returns an access token for a from its cache, refreshed if
// it expires within refreshMargin or force is set; fresh says it was
// refreshed now.
func (f *Fetcher) oauthToken(a *config.Account, force bool) (tok string, fresh bool, err error) {
	if f.stateDir() == "" {
		return "", false, errors.New("built-in OAuth needs the spool's state folder")
	}
	path := CachePath(f.stateDir(), a.Name)
	c, err := readCache(path)
	if err != nil {
		return "", false, err
	}
	if !force && c.AccessToken != "" && time.Until(c.Expiry) > refreshMargin {
		return c.AccessToken, false, nil
	}
	cfg, err := oauthConfig(a)
	if err != nil {
		return "", false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.Timeout.D())
	defer cancel()
	t, err := cfg.TokenSource(httpContext(ctx, f.httpClient), &oauth2.Token{RefreshToken: c.RefreshToken}).Token()
	if err != nil {
		return "", false, refreshError(err)
	}
	next := &tokenCache{RefreshToken: t.RefreshToken, AccessToken: t.AccessToken, TokenType: t.TokenType, Expiry: t.Expiry}
	if next.RefreshToken == "" {
		next.RefreshToken = c.RefreshToken // not rotated
	}
	// "fetchd oauth login" may have stored a new authorization meanwhile:
	// that one wins.
	if now, err := readCache(path); err == nil && now.RefreshToken != c.RefreshToken {
		return next.AccessToken, true, nil
	}
	if err := writeCache(f.fs(), path, next); err != nil {
		return "", false, err
	}
	f.Log.Debug().Str("account", a.Name).Time("expiry", next.Expiry).Msg("OAuth access token refreshed")
	return next.AccessToken, true, nil
}

// refreshError turns a failed refresh into revokedError (invalid_grant)
// or an error naming the endpoint's answer, never the request.
func refreshError(err error) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return fmt.Errorf("OAuth token refresh: %w", err)
	}
	if re.ErrorCode == "invalid_grant" {
		return &revokedError{code: re.ErrorCode, desc: re.ErrorDescription}
	}
	status := ""
	if re.Response != nil {
		status = re.Response.Status
	}
	return fmt.Errorf("OAuth token refresh: the token endpoint answered %s %s %s", status, re.ErrorCode, re.ErrorDescription)
}

// oauthCredential is credential for built-in OAuth: each failure with
// its event, a revoked refresh token counted as a refused login.
func (s *session) oauthCredential() (string, error) {
	a := s.a
	tok, fresh, err := s.f.oauthToken(a, s.forceRefresh)
	var rev *revokedError
	switch {
	case err == nil:
		s.tokenFresh = s.tokenFresh || fresh
		return tok, nil
	case errors.Is(err, errNoLogin):
		event.Emit(&s.f.Log, event.OAuthNoLogin).Str("account", a.Name).Err(err).
			Msg("run fetchd oauth login " + a.Name + " to authorize fetchd; nothing was sent to the POP3 server")
		return "", classify(err, failOther)
	case errors.As(err, &rev):
		event.Emit(&s.f.Log, event.OAuthRevoked).Str("account", a.Name).Str("server_said", rev.Error()).
			Msg("the refresh token was revoked or expired: run fetchd oauth login " + a.Name + "; counted as a refused login")
		return "", classify(err, failRefused)
	}
	event.Emit(&s.f.Log, event.OAuthFailed).Str("account", a.Name).Err(err).Msg("will try again later; check the network path to oauth_token_url")
	return "", classify(err, failOther)
}

// retryOAuth reports whether a refused login with a cached access token
// is worth one more try with a token refreshed now (the provider revoked
// it early, or the clocks differ); it arms that refresh.
func (s *session) retryOAuth(err error) bool {
	var done *pollError
	if !s.a.BuiltInOAuth() || s.tokenFresh || s.forceRefresh || errors.As(err, &done) {
		return false
	}
	if _, kind, _ := loginProblem(err); kind != failRefused {
		return false
	}
	s.f.Log.Info().Str("account", s.a.Name).Msg("the server refused the cached OAuth access token; refreshing it and trying once more")
	s.forceRefresh = true
	return true
}

// oauthPrint is what the breaker's fingerprint adds for built-in OAuth:
// the stored refresh token (hashed), so a new "fetchd oauth login"
// resumes an account stopped by refused logins.
func (f *Fetcher) oauthPrint(a *config.Account) string {
	if !a.BuiltInOAuth() || f.stateDir() == "" {
		return ""
	}
	rt := ""
	if c, err := readCache(CachePath(f.stateDir(), a.Name)); err == nil {
		rt = c.RefreshToken
	}
	h := sha256.Sum256([]byte("oauth\x00" + rt))
	return hex.EncodeToString(h[:])
}

// fingerprint is the package's fingerprint plus oauthPrint.
func (f *Fetcher) fingerprint(a *config.Account) string {
	p := fingerprint(a)
	if op := f.oauthPrint(a); op != "" {
		h := sha256.Sum256([]byte(p + "\x00" + op))
		return hex.EncodeToString(h[:])
	}
	return p
}
