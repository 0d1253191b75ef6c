package pop3

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxLine caps one status line or one line of a LIST, UIDL or CAPA
// listing, CRLF included. RFC 2449 §4 allows 512 octets; we tolerate 8 times
// that, and anything longer is a protocol violation.
const maxLine = 4096

// ErrProtocol is wrapped by every error caused by a reply that breaks the
// protocol: garbage status lines, over-long lines, bad listings, bad UIDs.
var ErrProtocol = errors.New("protocol violation")

// ErrInsecure is wrapped when the client refuses to continue in clear text:
// STLS required but not offered or refused, or credentials on a connection
// without TLS while Options.AllowPlaintext is false.
var ErrInsecure = errors.New("refusing to continue without TLS")

// ErrClosed is wrapped by commands issued after Close or Quit.
var ErrClosed = errors.New("client closed")

// Error is an -ERR reply from the server (RFC 1939 §3). The session is still
// in sync after it and the next command may be sent.
type Error struct {
	Cmd  string // the command with its non-secret arguments: "RETR 3", "PASS"
	Code string // RFC 2449 §8 response code without brackets: "IN-USE", "SYS/TEMP", or ""
	Text string // the rest of the reply, with control characters replaced by '?'
}

func (e *Error) Error() string {
	s := "pop3 " + e.Cmd + ": -ERR"
	if e.Code != "" {
		s += " [" + e.Code + "]"
	}
	if e.Text != "" {
		s += " " + e.Text
	}
	return s
}

// Temporary reports whether the same command may succeed later.
//
// RFC 2449 §8.1.1 IN-USE, §8.1.2 LOGIN-DELAY and RFC 3206 §4 SYS/TEMP are
// temporary; RFC 3206 §5 AUTH and §4 SYS/PERM are not. Any other code, and no
// code at all, counts as temporary: retrying is safe, giving up is not
// (STYLE.md §4). Callers who want to treat a bare -ERR to PASS as a bad
// password can test Code == "" themselves.
func (e *Error) Temporary() bool {
	return !hasLevel(e.Code, "AUTH") && !hasLevel(e.Code, "SYS/PERM")
}

// hasLevel reports whether code is prefix or a sub-level of it
// (RFC 2449 §8: levels are separated by "/", comparison is case-insensitive).
func hasLevel(code, prefix string) bool {
	code = strings.ToUpper(code)
	return code == prefix || strings.HasPrefix(code, prefix+"/")
}

// parseStatus splits a status line (CRLF removed) into its indicator, its
// RFC 2449 §8 response code and its text. An -ERR line gives ok == false and
// no error; only a line that is neither +OK nor -ERR is an error.
func parseStatus(line []byte) (ok bool, code, text string, err error) {
	var rest []byte
	switch {
	case hasIndicator(line, "+OK"):
		ok, rest = true, line[3:]
	case hasIndicator(line, "-ERR"):
		rest = line[4:]
	default:
		return false, "", "", fmt.Errorf("%w: status line %s is neither +OK nor -ERR", ErrProtocol, quote(line))
	}
	rest = bytes.TrimPrefix(rest, []byte(" "))
	code, rest = splitRespCode(rest)
	return ok, code, clean(rest), nil
}

// hasIndicator reports whether line starts with ind followed by a space or
// the end of the line (RFC 1939 §3). Case is ignored to tolerate old servers.
func hasIndicator(line []byte, ind string) bool {
	if len(line) < len(ind) || !bytes.EqualFold(line[:len(ind)], []byte(ind)) {
		return false
	}
	return len(line) == len(ind) || line[len(ind)] == ' '
}

// splitRespCode removes a leading "[CODE]" from text (RFC 2449 §8:
// resp-code = "[" resp-level *("/" resp-level) "]", rchar = %x21-2E /
// %x30-5C / %x5E-7F). Text that does not start with a well-formed code is
// returned unchanged with an empty code.
func splitRespCode(text []byte) (string, []byte) {
	if len(text) == 0 || text[0] != '[' {
		return "", text
	}
	end := bytes.IndexByte(text, ']')
	if end < 2 || !validRespCode(text[1:end]) {
		return "", text
	}
	return string(text[1:end]), bytes.TrimPrefix(text[end+1:], []byte(" "))
}

func validRespCode(code []byte) bool {
	for _, level := range bytes.Split(code, []byte("/")) {
		if len(level) == 0 {
			return false
		}
		for _, b := range level {
			if b < 0x21 || b > 0x7E || b == '[' || b == ']' {
				return false
			}
		}
	}
	return true
}

// trimEOL removes one trailing CRLF or bare LF.
func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}

// clean makes server text safe to put in errors and logs: invalid UTF-8 and
// control characters become '?'.
func clean(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7F {
			return '?'
		}
		return r
	}, s)
}

// quote renders at most 60 octets of server data for an error message.
func quote(b []byte) string {
	const n = 60
	if len(b) <= n {
		return strconv.Quote(string(b))
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return strconv.Quote(string(b[:cut])) + fmt.Sprintf("... (%d octets)", len(b))
}

// parseUint parses a non-empty string of ASCII digits. Signs, spaces and
// more than 18 digits (which could overflow int64) are refused.
func parseUint(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}
