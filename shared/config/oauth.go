package config

import (
	"net/url"
	"strings"
)

// OAuthOptions make fetchd get and refresh the OAuth 2.0 access token
// itself (docs/oauth.md): a refresh token from a first authorization
// ("fetchd oauth login ACCOUNT", the device-code flow of RFC 8628) is
// kept in the spool's state/ folder and exchanged for access tokens at
// the provider's token endpoint. They are flat keys of the account, all
// starting with oauth_, and exclude token_file and token_command.
type OAuthOptions struct {
	// Provider is "microsoft", "google" or "custom" (oauth_token_url and
	// oauth_device_url given); empty: no built-in OAuth.
	Provider string `toml:"oauth_provider"`
	// ClientID is the application (client) id of the app registration.
	ClientID string `toml:"oauth_client_id"`
	// ClientSecretFile holds the client secret, for providers that want
	// one (Google's "TVs and limited input devices" clients); never
	// written in this file.
	ClientSecretFile string `toml:"oauth_client_secret_file"`
	// Tenant is the Microsoft Entra tenant: "common" (default),
	// "organizations", a domain or a tenant id.
	Tenant string `toml:"oauth_tenant"`
	// Scopes default to the provider's POP3 scope (and offline_access,
	// for a refresh token, at Microsoft).
	Scopes []string `toml:"oauth_scopes"`
	// TokenURL and DeviceURL are the token and device authorization
	// endpoints; set for a custom provider, derived from the provider
	// (and tenant) otherwise.
	TokenURL  string `toml:"oauth_token_url"`
	DeviceURL string `toml:"oauth_device_url"`
}

// OAuthProviders lists the values of oauth_provider.
var OAuthProviders = []string{"microsoft", "google", "custom"}

// BuiltInOAuth reports whether fetchd refreshes the account's token
// itself.
func (o *OAuthOptions) BuiltInOAuth() bool { return o.Provider != "" }

func (o *OAuthOptions) set() bool {
	return o.Provider != "" || o.ClientID != "" || o.ClientSecretFile != "" || o.Tenant != "" ||
		len(o.Scopes) > 0 || o.TokenURL != "" || o.DeviceURL != ""
}

func (o *OAuthOptions) defaults() {
	switch o.Provider {
	case "microsoft":
		if o.Tenant == "" {
			o.Tenant = "common"
		}
		base := "https://login.microsoftonline.com/" + url.PathEscape(o.Tenant) + "/oauth2/v2.0/"
		if o.TokenURL == "" {
			o.TokenURL = base + "token"
		}
		if o.DeviceURL == "" {
			o.DeviceURL = base + "devicecode"
		}
		if len(o.Scopes) == 0 {
			o.Scopes = []string{"https://outlook.office.com/POP.AccessAsUser.All", "offline_access"}
		}
	case "google":
		if o.TokenURL == "" {
			o.TokenURL = "https://oauth2.googleapis.com/token"
		}
		if o.DeviceURL == "" {
			o.DeviceURL = "https://oauth2.googleapis.com/device/code"
		}
		if len(o.Scopes) == 0 {
			o.Scopes = []string{"https://mail.google.com/"}
		}
	}
}

func (a *Account) validateOAuth(p *problems, key string) {
	o := &a.FetchOptions.OAuthOptions
	switch {
	case !o.set():
		return
	case !a.OAuth():
		p.add(key+".oauth_provider", "only used with auth = \"xoauth2\" or \"oauthbearer\"")
		return
	case o.Provider == "":
		p.add(key+".oauth_provider", "missing: the oauth_ keys need oauth_provider = \"microsoft\", \"google\" or \"custom\"")
		return
	case !oneOf(o.Provider, OAuthProviders...):
		p.add(key+".oauth_provider", "%q is not microsoft, google or custom", o.Provider)
		return
	}
	if a.TokenFile != "" || a.TokenCommand != "" {
		k := ".token_file"
		if a.TokenFile == "" {
			k = ".token_command"
		}
		p.add(key+k, "not used with oauth_provider: fetchd refreshes the token itself (set one or the other)")
	}
	if o.ClientID == "" {
		p.add(key+".oauth_client_id", "missing: the application (client) id of the app registration")
	}
	if o.ClientSecretFile != "" {
		checkSecretFile(p, key+".oauth_client_secret_file", o.ClientSecretFile)
	}
	if o.Tenant != "" && o.Provider != "microsoft" {
		p.add(key+".oauth_tenant", "only used with oauth_provider = \"microsoft\"")
	}
	if o.Provider == "custom" && o.TokenURL == "" {
		p.add(key+".oauth_token_url", "missing: oauth_provider = \"custom\" needs the token endpoint")
	}
	checkEndpoint(p, key+".oauth_token_url", o.TokenURL)
	checkEndpoint(p, key+".oauth_device_url", o.DeviceURL)
	for _, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			p.add(key+".oauth_scopes", "%q is not a scope (one scope per string)", s)
		}
	}
}

// checkEndpoint wants an https URL; plain http only to this machine
// (a local test or a proxy), since the tokens travel in it.
func checkEndpoint(p *problems, key, raw string) {
	if raw == "" {
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "":
		p.add(key, "%q is not an absolute URL", raw)
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback(u.Hostname()):
	default:
		p.add(key, "%q: the tokens travel over it, so https is required (http only to this machine)", raw)
	}
}
