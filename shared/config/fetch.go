package config

// FetchOptions are the account keys only fetchd reads: how it logs in, and
// what it does with a message larger than max_size.
type FetchOptions struct {
	// Auth is the login method: "user" (USER/PASS, RFC 1939), "apop"
	// (RFC 1939 §7), "plain" (RFC 4616), "login", "xoauth2" or
	// "oauthbearer" (RFC 7628) over AUTH (RFC 5034). Empty: the best one
	// the server offers for a password.
	Auth string `toml:"auth"`
	// TokenFile or TokenCommand gives the OAuth 2.0 access token for
	// xoauth2 and oauthbearer: the file is read, or the command run
	// (sh -c; its standard output, trimmed), before every login, so a
	// token refreshed by another program is picked up.
	TokenFile    string `toml:"token_file"`
	TokenCommand string `toml:"token_command"`
	// OAuthOptions (oauth_provider, oauth_client_id, ...) make fetchd
	// refresh the token itself instead: oauth.go.
	OAuthOptions
	// Oversize says what happens to a message larger than max_size:
	// "leave" (default) leaves it on the server with an event; "headers"
	// also stores its header with a notice as the body, for the
	// recipient to see. Either way the message itself is not deleted.
	Oversize string `toml:"oversize"`
}

// AuthMethods lists the values of auth.
var AuthMethods = []string{"user", "apop", "plain", "login", "xoauth2", "oauthbearer"}

// OAuth reports whether the account logs in with an OAuth 2.0 token.
func (o *FetchOptions) OAuth() bool { return o.Auth == "xoauth2" || o.Auth == "oauthbearer" }

func (o *FetchOptions) defaults() {
	if o.Oversize == "" {
		o.Oversize = "leave"
	}
	o.OAuthOptions.defaults()
}

func (a *Account) validateFetch(p *problems, key, file string) {
	o := &a.FetchOptions
	switch {
	case o.OAuth():
		a.validateToken(p, key)
	case o.Auth == "" || oneOf(o.Auth, AuthMethods...):
		validateSecret(p, key, file, a.secretSource(), true)
		if o.TokenFile != "" || o.TokenCommand != "" {
			p.add(key+".token_file", "only used with auth = \"xoauth2\" or \"oauthbearer\"")
		}
	default:
		p.add(key+".auth", "%q is not user, apop, plain, login, xoauth2 or oauthbearer (or leave auth out: the best the server offers)", o.Auth)
	}
	a.validateOAuth(p, key)
	if !oneOf(o.Oversize, "leave", "headers") {
		p.add(key+".oversize", "%q is not leave or headers", o.Oversize)
	}
}

func (a *Account) validateToken(p *problems, key string) {
	o := &a.FetchOptions
	if a.Password != "" || a.PasswordFile != "" || a.PasswordEnv != "" || a.PasswordCommand != "" {
		p.add(key+".password_file", "not used with auth = %q: the access token comes from token_file, token_command or oauth_provider", o.Auth)
	}
	switch {
	case o.BuiltInOAuth():
		// validateOAuth
	case o.TokenFile != "" && o.TokenCommand != "":
		p.add(key+".token_file", "set token_file or token_command, not both")
	case o.TokenFile != "":
		checkSecretFile(p, key+".token_file", o.TokenFile)
	case o.TokenCommand == "":
		p.add(key+".token_file", "missing: auth = %q needs token_file or token_command (the OAuth 2.0 access token), or oauth_provider", o.Auth)
	}
}
