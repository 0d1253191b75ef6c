package route

import (
	"regexp"
	"strings"

	"github.com/emersion/go-message/mail"

	"example.org/popspool/shared/config"
)

// addrSpec finds bare addresses in text a strict parser refused.
var addrSpec = regexp.MustCompile(`[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9.-]+[A-Za-z0-9]`)

// addresses returns the addresses in a header value. It uses go-message's
// RFC 5322 parser (encoded words, groups, comments) and falls back to
// picking out addr-specs from values it refuses: ISPs and MUAs write
// envelope headers and lists sloppily ("a@x;b@x", unknown charsets).
func addresses(v string) []string {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	var out []string
	if list, err := mail.ParseAddressList(v); err == nil {
		for _, a := range list {
			if config.ValidAddress(a.Address) {
				out = append(out, a.Address)
			}
		}
		return out
	}
	for _, m := range addrSpec.FindAllString(v, -1) {
		if config.ValidAddress(m) {
			out = append(out, m)
		}
	}
	return out
}
