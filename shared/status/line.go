package status

import (
	"encoding/json"
	"strconv"
)

// scanLine decodes a log line into l without encoding/json's reflection,
// for the lines zerolog writes: one JSON object whose keys are plain
// lower-case ASCII and whose fields the tracker reads have the types of
// line. It reports false for anything else (a key with an upper-case or
// non-ASCII letter or an escape, which encoding/json might match to a
// field case-insensitively; a null or a value of another type for a field
// of line; a number out of its field's range; a time UnmarshalJSON
// refuses; any syntax error), leaving l part filled: the caller then
// decodes the line afresh with encoding/json. What it accepts it decodes
// as encoding/json would, and it accepts only valid JSON
// (FuzzScanLineIsJSON).
func scanLine(s []byte, l *line) bool {
	sc := scanner{s: s}
	sc.space()
	if !sc.byte('{') {
		return false
	}
	sc.space()
	if sc.byte('}') {
		return sc.end()
	}
	for {
		key, ok := sc.key()
		if !ok {
			return false
		}
		sc.space()
		if !sc.byte(':') {
			return false
		}
		sc.space()
		if !sc.field(key, l) {
			return false
		}
		sc.space()
		if sc.byte('}') {
			return sc.end()
		}
		if !sc.byte(',') {
			return false
		}
		sc.space()
	}
}

// maxDepth bounds the nesting of a value scanLine skips; a deeper line
// goes to encoding/json.
const maxDepth = 64

type scanner struct {
	s []byte
	i int
}

func (sc *scanner) space() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// byte consumes c if it is next.
func (sc *scanner) byte(c byte) bool {
	if sc.i < len(sc.s) && sc.s[sc.i] == c {
		sc.i++
		return true
	}
	return false
}

// end reports whether only white space follows.
func (sc *scanner) end() bool {
	sc.space()
	return sc.i == len(sc.s)
}

// key reads an object key that no other spelling could match: a string
// of lower-case ASCII letters, digits and punctuation, without escapes.
func (sc *scanner) key() ([]byte, bool) {
	tok, ok := sc.str()
	if !ok {
		return nil, false
	}
	k := tok[1 : len(tok)-1]
	for _, c := range k {
		if c == '\\' || c >= 0x80 || 'A' <= c && c <= 'Z' {
			return nil, false
		}
	}
	return k, true
}

// str reads a string token, quotes included, checking its escapes.
func (sc *scanner) str() ([]byte, bool) {
	start := sc.i
	if !sc.byte('"') {
		return nil, false
	}
	for sc.i < len(sc.s) {
		c := sc.s[sc.i]
		sc.i++
		switch {
		case c == '"':
			return sc.s[start:sc.i], true
		case c < 0x20:
			return nil, false
		case c == '\\':
			if !sc.escape() {
				return nil, false
			}
		}
	}
	return nil, false
}

func (sc *scanner) escape() bool {
	if sc.i >= len(sc.s) {
		return false
	}
	c := sc.s[sc.i]
	sc.i++
	switch c {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return true
	case 'u':
		if sc.i+4 > len(sc.s) {
			return false
		}
		for _, h := range sc.s[sc.i : sc.i+4] {
			if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
				return false
			}
		}
		sc.i += 4
		return true
	}
	return false
}

// text reads a string value as encoding/json decodes it: a token without
// escapes or non-ASCII bytes is its own text; any other is decoded by
// encoding/json itself (escapes, invalid UTF-8).
func (sc *scanner) text() (string, bool) {
	tok, ok := sc.str()
	if !ok {
		return "", false
	}
	for _, c := range tok[1 : len(tok)-1] {
		if c == '\\' || c >= 0x80 {
			var s string
			return s, json.Unmarshal(tok, &s) == nil
		}
	}
	return string(tok[1 : len(tok)-1]), true
}

// number reads a number token of JSON's grammar.
func (sc *scanner) number() ([]byte, bool) {
	start := sc.i
	sc.byte('-')
	switch {
	case sc.byte('0'):
	case sc.digits() == 0:
		return nil, false
	}
	if sc.byte('.') && sc.digits() == 0 {
		return nil, false
	}
	if sc.byte('e') || sc.byte('E') {
		if !sc.byte('+') {
			sc.byte('-')
		}
		if sc.digits() == 0 {
			return nil, false
		}
	}
	return sc.s[start:sc.i], true
}

func (sc *scanner) digits() int {
	n := 0
	for sc.i < len(sc.s) && '0' <= sc.s[sc.i] && sc.s[sc.i] <= '9' {
		sc.i++
		n++
	}
	return n
}

// word consumes the literal w if it is next.
func (sc *scanner) word(w string) bool {
	if len(sc.s)-sc.i >= len(w) && string(sc.s[sc.i:sc.i+len(w)]) == w {
		sc.i += len(w)
		return true
	}
	return false
}

// integer reads a number into an integer field of bits bits, as
// encoding/json does (strconv.ParseInt: no fraction, no exponent, in
// range).
func (sc *scanner) integer(bits int) (int64, bool) {
	tok, ok := sc.number()
	if !ok {
		return 0, false
	}
	neg := tok[0] == '-'
	if neg {
		tok = tok[1:]
	}
	limit := uint64(1) << (bits - 1) // the magnitude of the most negative
	var n uint64
	for _, c := range tok {
		if c < '0' || c > '9' || n > (limit-1)/10+1 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= limit:
		return int64(-n), true // two's complement: -limit too
	case !neg && n < limit:
		return int64(n), true
	}
	return 0, false
}

// field reads the value of key into l, or skips it if line has no such
// field.
func (sc *scanner) field(key []byte, l *line) bool {
	var ok bool
	switch string(key) {
	case "level":
		l.Level, ok = sc.text()
	case "message":
		l.Message, ok = sc.text()
	case "error":
		l.Error, ok = sc.text()
	case "reason":
		l.Reason, ok = sc.text()
	case "account":
		l.Account, ok = sc.text()
	case "time":
		var tok []byte
		if tok, ok = sc.str(); ok {
			ok = l.Time.UnmarshalJSON(tok) == nil
		}
	case "event":
		var n int64
		n, ok = sc.integer(strconv.IntSize)
		l.Event = int(n)
	case "fetched":
		var n int64
		n, ok = sc.integer(strconv.IntSize)
		l.Fetched = int(n)
	case "set_aside":
		var n int64
		n, ok = sc.integer(strconv.IntSize)
		v := int(n)
		l.SetAside = &v
	case "size":
		l.Size, ok = sc.integer(64)
	case "bytes":
		l.Bytes, ok = sc.integer(64)
	case "elapsed_ms":
		var tok []byte
		if tok, ok = sc.number(); ok {
			f, err := strconv.ParseFloat(string(tok), 64)
			ok = err == nil
			l.ElapsedMS = &f
		}
	case "ok":
		var b bool
		switch {
		case sc.word("true"):
			b, ok = true, true
		case sc.word("false"):
			ok = true
		}
		l.OK = &b
	default:
		return sc.skip(0)
	}
	return ok
}

// skip reads over any value, checking its syntax.
func (sc *scanner) skip(depth int) bool {
	if depth > maxDepth || sc.i >= len(sc.s) {
		return false
	}
	switch c := sc.s[sc.i]; {
	case c == '"':
		_, ok := sc.str()
		return ok
	case c == '-' || '0' <= c && c <= '9':
		_, ok := sc.number()
		return ok
	case c == '[':
		return sc.list(depth)
	case c == '{':
		return sc.object(depth)
	}
	return sc.word("true") || sc.word("false") || sc.word("null")
}

func (sc *scanner) list(depth int) bool {
	sc.i++
	sc.space()
	if sc.byte(']') {
		return true
	}
	for {
		if !sc.skip(depth + 1) {
			return false
		}
		sc.space()
		if sc.byte(']') {
			return true
		}
		if !sc.byte(',') {
			return false
		}
		sc.space()
	}
}

func (sc *scanner) object(depth int) bool {
	sc.i++
	sc.space()
	if sc.byte('}') {
		return true
	}
	for {
		if _, ok := sc.str(); !ok {
			return false
		}
		sc.space()
		if !sc.byte(':') {
			return false
		}
		sc.space()
		if !sc.skip(depth + 1) {
			return false
		}
		sc.space()
		if sc.byte('}') {
			return true
		}
		if !sc.byte(',') {
			return false
		}
		sc.space()
	}
}
