package console

import (
	"io"
	"mime"
	"net/mail"
	"os"
	"strings"
)

// headerLimit bounds how much of a file is read for its From and Subject.
const headerLimit = 64 << 10

var words = &mime.WordDecoder{}

// fromSubject reads the From and Subject fields of the spool file at
// path, decoded (RFC 2047) and cut to a line's length. They are what the
// sender wrote: the templates escape them like every other value.
func fromSubject(path string) (from, subject string) {
	f, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	m, err := mail.ReadMessage(io.LimitReader(f, headerLimit))
	if err != nil {
		return "", ""
	}
	return decoded(m.Header.Get("From")), decoded(m.Header.Get("Subject"))
}

func decoded(s string) string {
	if d, err := words.DecodeHeader(s); err == nil {
		s = d
	}
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 120 {
		s = string(r[:120]) + "…"
	}
	return s
}
