package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFetchOptions(t *testing.T) {
	c, err := Load(write(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Account[0].FetchOptions; o.Auth != "" || o.Oversize != "leave" {
		t.Fatalf("defaults %+v", o)
	}
	oauth := strings.Replace(good, `password_file = "DIR/office.pass"`,
		"auth = \"xoauth2\"\ntoken_command = \"cat DIR/office.pass\"\noversize = \"headers\"", 1)
	c, err = Load(write(t, oauth))
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Account[0].FetchOptions; !o.OAuth() || o.Oversize != "headers" || o.TokenCommand == "" {
		t.Fatalf("set %+v", o)
	}
	for _, m := range AuthMethods {
		text := strings.Replace(good, `username = "office@example.net"`, "username = \"office@example.net\"\nauth = \""+m+"\"", 1)
		_, err := Load(write(t, text))
		if oauthy := m == "xoauth2" || m == "oauthbearer"; (err == nil) == oauthy {
			t.Errorf("auth = %q with a password file: err = %v", m, err)
		}
	}
}

func TestFetchOptionErrors(t *testing.T) {
	for _, c := range []struct{ from, to, want string }{
		{`username = "office@example.net"`, "username = \"x\"\nauth = \"cram-md5\"",
			`:10: account.office.auth: "cram-md5" is not user, apop, plain, login, xoauth2 or oauthbearer`},
		{`max_size = "10MB"`, "max_size = \"10MB\"\noversize = \"truncate\"",
			`:13: account.office.oversize: "truncate" is not leave or headers`},
		{`max_size = "10MB"`, "max_size = \"10MB\"\ntoken_file = \"DIR/office.pass\"",
			`:13: account.office.token_file: only used with auth = "xoauth2" or "oauthbearer"`},
		{`password_file = "DIR/office.pass"`, "auth = \"oauthbearer\"",
			`:6: account.office.token_file: missing: auth = "oauthbearer" needs token_file or token_command`},
		{`username = "office@example.net"`, "username = \"x\"\nauth = \"xoauth2\"\ntoken_file = \"DIR/nope\"",
			`account.office.password_file: not used with auth = "xoauth2"`},
		{`username = "office@example.net"`, "username = \"x\"\nauth = \"xoauth2\"\ntoken_file = \"DIR/nope\"",
			`account.office.token_file: cannot read:`},
	} {
		_, err := Load(write(t, strings.Replace(good, c.from, c.to, 1)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got:\n%v", c.want, err)
		}
	}
}

func TestTokenFileMode(t *testing.T) {
	text := strings.Replace(good, `password_file = "DIR/office.pass"`, "auth = \"xoauth2\"\ntoken_file = \"DIR/office.pass\"", 1)
	path := write(t, text)
	pass := filepath.Join(filepath.Dir(path), "office.pass")
	os.Chmod(pass, 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "account.office.token_file: "+pass+" is readable or writable by every user") {
		t.Fatalf("got %v", err)
	}
	os.Chmod(pass, 0o640)
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
}

func TestFetchSessionsAndPollLimits(t *testing.T) {
	c, err := Load(write(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Fetch.Sessions != DefaultSessions || c.Account[0].MaxMessages != 0 || c.Account[0].MaxBytes != 0 {
		t.Fatalf("defaults: sessions %d, max_messages %d, max_bytes %d", c.Fetch.Sessions, c.Account[0].MaxMessages, c.Account[0].MaxBytes)
	}
	set := strings.Replace(good, "[[account]]", "[fetch]\nsessions = 32\n\n[[account]]", 1)
	set = strings.Replace(set, `max_size = "10MB"`, "max_size = \"10MB\"\nmax_messages = 50\nmax_bytes = \"20MB\"", 1)
	c, err = Load(write(t, set))
	if err != nil {
		t.Fatal(err)
	}
	if c.Fetch.Sessions != 32 || c.Account[0].MaxMessages != 50 || c.Account[0].MaxBytes != 20<<20 {
		t.Fatalf("set: sessions %d, max_messages %d, max_bytes %d", c.Fetch.Sessions, c.Account[0].MaxMessages, c.Account[0].MaxBytes)
	}
	for _, x := range []struct{ from, to, want string }{
		{"[[account]]", "[fetch]\nsessions = 257\n\n[[account]]", ":7: fetch.sessions: must be from 1 to 256"},
		{"[[account]]", "[fetch]\nsessions = -1\n\n[[account]]", ":7: fetch.sessions: must be from 1 to 256"},
		{"[[account]]", "[fetch]\nsesions = 2\n\n[[account]]", ":7: fetch.sesions: unknown key"},
		{`max_size = "10MB"`, "max_size = \"10MB\"\nmax_messages = -3", ":13: account.office.max_messages: must be 0 (no limit) or more"},
	} {
		_, err := Load(write(t, strings.Replace(good, x.from, x.to, 1)))
		if err == nil || !strings.Contains(err.Error(), x.want) {
			t.Errorf("want %q, got:\n%v", x.want, err)
		}
	}
}

func TestAccountPipelining(t *testing.T) {
	c, err := Load(write(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Account[0].Pipelines() {
		t.Fatal("an account without a pipelining line does not pipeline")
	}
	c, err = Load(write(t, strings.Replace(good, `max_size = "10MB"`, "max_size = \"10MB\"\npipelining = false", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Account[0].Pipelines() {
		t.Fatal("pipelining = false is not read")
	}
	_, err = Load(write(t, strings.Replace(good, `max_size = "10MB"`, "max_size = \"10MB\"\npipelining = \"no\"", 1)))
	if err == nil || !strings.Contains(err.Error(), "line 13") || !strings.Contains(err.Error(), "account.pipelining") {
		t.Fatalf("pipelining = \"no\": got %v", err)
	}
}
