package pop3

import (
	"errors"
	"fmt"
	"strconv"
)

// The SASL mechanisms fetchd uses with Auth. Each is client-first: the
// credentials go in the initial response, which Auth moves to a
// continuation line when the AUTH command would exceed 255 octets (RFC
// 5034 §4), as OAuth tokens do: the two-step login Microsoft 365 needs.

// secretHolder is a mechanism of this package: it names its password or
// token, which Auth masks in server text.
type secretHolder interface{ secret() string }

func (a *plainAuth) secret() string   { return a.pass }
func (a *loginAuth) secret() string   { return a.pass }
func (a *xoauth2) secret() string     { return a.token }
func (a *oauthBearer) secret() string { return a.token }

// PlainAuth is SASL PLAIN (RFC 4616): authzid NUL authcid NUL passwd.
// identity is the authorization identity, usually empty.
func PlainAuth(identity, user, pass string) SASLClient {
	return &plainAuth{identity, user, pass}
}

type plainAuth struct{ identity, user, pass string }

func (a *plainAuth) Start() (string, []byte, error) {
	return "PLAIN", []byte(a.identity + "\x00" + a.user + "\x00" + a.pass), nil
}

func (a *plainAuth) Next([]byte) ([]byte, error) {
	return nil, errors.New("PLAIN: unexpected server challenge")
}

// LoginAuth is the LOGIN mechanism (draft-murchison-sasl-login): no initial
// response; the first challenge ("Username:") is answered with the user
// name, the second ("Password:") with the password. Challenge texts vary
// between servers, so only their order counts.
func LoginAuth(user, pass string) SASLClient {
	return &loginAuth{user: user, pass: pass}
}

type loginAuth struct {
	user, pass string
	step       int
}

func (a *loginAuth) Start() (string, []byte, error) { return "LOGIN", nil, nil }

func (a *loginAuth) Next([]byte) ([]byte, error) {
	a.step++
	switch a.step {
	case 1:
		return []byte(a.user), nil
	case 2:
		return []byte(a.pass), nil
	}
	return nil, errors.New("LOGIN: more than two server challenges")
}

// XOAuth2 is Google's and Microsoft's XOAUTH2: "user=" user ^A
// "auth=Bearer " token ^A ^A. A failed token is answered by a challenge
// holding a JSON error, to which the client replies with an empty line;
// the server then sends -ERR.
func XOAuth2(user, token string) SASLClient {
	return &xoauth2{user: user, token: token}
}

type xoauth2 struct {
	user, token string
	failed      bool
}

func (a *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + a.user + "\x01auth=Bearer " + a.token + "\x01\x01"), nil
}

func (a *xoauth2) Next(challenge []byte) ([]byte, error) {
	if a.failed {
		return nil, errors.New("XOAUTH2: second challenge after an error")
	}
	a.failed = true
	return []byte{}, nil
}

// OAuthBearer is OAUTHBEARER (RFC 7628 §3.1): a GS2 header naming user,
// then host, port and "auth=Bearer " token, separated by ^A. After a
// failure the server sends a JSON error as a challenge and the client
// answers with a single ^A (RFC 7628 §3.2.3).
func OAuthBearer(user, host string, port int, token string) SASLClient {
	return &oauthBearer{user: user, host: host, port: port, token: token}
}

type oauthBearer struct {
	user, host, token string
	port              int
	failed            bool
}

func (a *oauthBearer) Start() (string, []byte, error) {
	ir := "n,a=" + saslName(a.user) + ",\x01"
	if a.host != "" {
		ir += "host=" + a.host + "\x01"
	}
	if a.port > 0 {
		ir += "port=" + strconv.Itoa(a.port) + "\x01"
	}
	return "OAUTHBEARER", []byte(ir + "auth=Bearer " + a.token + "\x01\x01"), nil
}

func (a *oauthBearer) Next(challenge []byte) ([]byte, error) {
	if a.failed {
		return nil, fmt.Errorf("OAUTHBEARER: second challenge after an error")
	}
	a.failed = true
	return []byte{0x01}, nil
}

// saslName escapes "," and "=" in a GS2 authzid (RFC 5801 §4).
func saslName(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ',':
			out = append(out, "=2C"...)
		case '=':
			out = append(out, "=3D"...)
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}
