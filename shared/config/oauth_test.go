package config

import (
	"strings"
	"testing"
)

func oauthConfig(keys string) string {
	return strings.Replace(good, `password_file = "DIR/office.pass"`, "auth = \"xoauth2\"\n"+keys, 1)
}

func TestOAuthPresets(t *testing.T) {
	c, err := Load(write(t, oauthConfig("oauth_provider = \"microsoft\"\noauth_client_id = \"abc\"")))
	if err != nil {
		t.Fatal(err)
	}
	o := c.Account[0].OAuthOptions
	if !o.BuiltInOAuth() || o.Tenant != "common" ||
		o.TokenURL != "https://login.microsoftonline.com/common/oauth2/v2.0/token" ||
		o.DeviceURL != "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode" ||
		strings.Join(o.Scopes, " ") != "https://outlook.office.com/POP.AccessAsUser.All offline_access" {
		t.Fatalf("microsoft preset %+v", o)
	}
	c, err = Load(write(t, oauthConfig("oauth_provider = \"microsoft\"\noauth_client_id = \"abc\"\noauth_tenant = \"contoso.example\"")))
	if err != nil || c.Account[0].TokenURL != "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token" {
		t.Fatalf("tenant: %v %+v", err, c)
	}
	c, err = Load(write(t, oauthConfig("oauth_provider = \"google\"\noauth_client_id = \"abc\"\noauth_client_secret_file = \"DIR/office.pass\"")))
	if err != nil {
		t.Fatal(err)
	}
	o = c.Account[0].OAuthOptions
	if o.TokenURL != "https://oauth2.googleapis.com/token" || o.DeviceURL != "https://oauth2.googleapis.com/device/code" ||
		strings.Join(o.Scopes, " ") != "https://mail.google.com/" || o.Tenant != "" {
		t.Fatalf("google preset %+v", o)
	}
	c, err = Load(write(t, oauthConfig("oauth_provider = \"custom\"\noauth_client_id = \"abc\"\noauth_token_url = \"http://127.0.0.1:9/token\"\noauth_scopes = [\"pop\"]")))
	if err != nil || c.Account[0].TokenURL != "http://127.0.0.1:9/token" || c.Account[0].DeviceURL != "" {
		t.Fatalf("custom: %v", err)
	}
}

func TestOAuthErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{oauthConfig("oauth_provider = \"yahoo\"\noauth_client_id = \"abc\""),
			`:11: account.office.oauth_provider: "yahoo" is not microsoft, google or custom`},
		{oauthConfig("oauth_client_id = \"abc\""),
			`account.office.oauth_provider: missing`},
		{oauthConfig("oauth_provider = \"microsoft\"\noauth_client_id = \"abc\"\ntoken_command = \"echo x\""),
			`:13: account.office.token_command: not used with oauth_provider`},
		{oauthConfig("oauth_provider = \"custom\"\noauth_client_id = \"abc\""),
			`account.office.oauth_token_url: missing`},
		{oauthConfig("oauth_provider = \"custom\"\noauth_client_id = \"abc\"\noauth_token_url = \"http://idp.example/token\""),
			`:13: account.office.oauth_token_url: "http://idp.example/token": the tokens travel over it, so https is required`},
		{oauthConfig("oauth_provider = \"google\"\noauth_client_id = \"abc\"\noauth_tenant = \"x\""),
			`:13: account.office.oauth_tenant: only used with oauth_provider = "microsoft"`},
		{oauthConfig("oauth_provider = \"google\"\noauth_client_id = \"abc\"\noauth_client_secret_file = \"DIR/nope\""),
			`:13: account.office.oauth_client_secret_file: cannot read`},
		{oauthConfig("oauth_provider = \"google\"\noauth_client_id = \"abc\"\noauth_scopes = [\"a b\"]"),
			`:13: account.office.oauth_scopes: "a b" is not a scope`},
		{strings.Replace(good, `max_size = "10MB"`, "max_size = \"10MB\"\noauth_provider = \"google\"", 1),
			`:13: account.office.oauth_provider: only used with auth = "xoauth2" or "oauthbearer"`},
	} {
		_, err := Load(write(t, c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got:\n%v", c.want, err)
		}
	}
	_, err := Load(write(t, oauthConfig("oauth_provider = \"microsoft\"")))
	if err == nil || !strings.Contains(err.Error(), "account.office.oauth_client_id: missing") {
		t.Errorf("client id: %v", err)
	}
}
