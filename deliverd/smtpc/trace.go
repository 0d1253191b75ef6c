package smtpc

import (
	"bytes"
	"strconv"
	"strings"
)

// tracer hands the dialogue of one connection to Options.Trace: the
// command lines and the reply lines, never the message body (one note
// gives its size) and never a password or SASL response. It exists only
// while someone listens, so without Options.Trace no line is built.
type tracer struct {
	fn      func(dir byte, line string)
	secrets []string // masked in reply lines, longest first
	auth    bool     // an AUTH exchange is under way: the client's lines are masked
	body    int64    // body bytes written since the last note
}

// sent traces the command lines in p; in DATA it only counts the bytes.
func (t *tracer) sent(p []byte, inData bool) {
	if inData {
		t.body += int64(len(p))
		return
	}
	for _, line := range bytes.Split(bytes.TrimSuffix(p, []byte("\r\n")), []byte("\r\n")) {
		t.fn('C', t.shown(string(line)))
	}
}

// shown is a command line as traced. RFC 4954 §4: after "AUTH mech
// [initial-response]" each client line answers a 334 challenge with a
// base64 response, or cancels with "*", until the server's final reply.
func (t *tracer) shown(line string) string {
	if t.auth {
		if line == "*" {
			return line
		}
		return "****"
	}
	verb, rest, _ := strings.Cut(line, " ")
	if !strings.EqualFold(verb, "AUTH") {
		return clean(line)
	}
	t.auth = true
	mech, ir, _ := strings.Cut(rest, " ")
	if ir == "" {
		return clean(verb + " " + mech)
	}
	return clean(verb+" "+mech) + " ****"
}

// received traces one reply line (CRLF included), the secrets masked.
// A reply other than 334 ends an AUTH exchange (RFC 4954 §4).
func (t *tracer) received(raw []byte) {
	t.bodyNote()
	line := string(bytes.TrimRight(raw, "\r\n"))
	if t.auth && len(line) >= 3 && line[:3] != "334" && (len(line) == 3 || line[3] != '-') {
		t.auth = false
	}
	for _, s := range t.secrets {
		line = strings.ReplaceAll(line, s, "****")
	}
	t.fn('S', clean(line))
}

// bodyNote stands for the body written since the last note, if any.
func (t *tracer) bodyNote() {
	if t.body > 0 {
		t.fn('C', "[message body: "+strconv.FormatInt(t.body, 10)+" bytes with the final dot, not traced]")
		t.body = 0
	}
}

// clean replaces control characters, so that a line cannot forge others
// in a log read as text.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
