package smtpc

import "bytes"

// stuffer dot-stuffs a message body (RFC 5321 §4.5.2) exactly as
// net/textproto's DotWriter does, byte for byte (a leading dot doubled, a
// bare LF sent as CRLF, a bare CR passed on), but a span at a time:
// go-smtp's DataCommand goes through DotWriter, which handles one byte
// per call, and at 1 MB a message that was most of deliverd's CPU.
type stuffer struct {
	state int
	out   []byte
}

// The states are DotWriter's.
const (
	stBegin     = iota // no byte yet
	stBeginLine        // after a line break
	stCR               // after a CR
	stData             // inside a line
)

// stuff appends b, stuffed, to s.out.
func (s *stuffer) stuff(b []byte) {
	for len(b) > 0 {
		switch s.state {
		case stBegin, stBeginLine:
			s.state = stData
			if b[0] == '.' {
				s.out = append(s.out, '.')
			}
		case stCR:
			s.state = stData
			if b[0] == '\n' {
				s.state = stBeginLine
			}
			s.out = append(s.out, b[0])
			b = b[1:]
			continue
		}
		i := lineBreak(b)
		if i < 0 {
			s.out = append(s.out, b...)
			return
		}
		s.out = append(s.out, b[:i]...)
		if b[i] == '\r' {
			s.state = stCR
		} else {
			s.out = append(s.out, '\r')
			s.state = stBeginLine
		}
		s.out = append(s.out, b[i])
		b = b[i+1:]
	}
}

// lineBreak is the index of b's first CR or LF, or -1.
func lineBreak(b []byte) int {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return bytes.IndexByte(b, '\r')
	}
	if j := bytes.IndexByte(b[:i], '\r'); j >= 0 {
		return j
	}
	return i
}

// ending returns how many bytes at the end of s.out to hold back, and
// what to write through the DotWriter in their place, so that its Close
// (which ends the data by its own state) writes exactly what DotWriter
// would have written after the whole body: the held-back bytes, and
// after a body that does not end in a line break, the CRLF DotWriter
// adds before the final dot.
func (s *stuffer) ending() (hold int, feed string) {
	switch s.state {
	case stBeginLine:
		return 2, "\r\n"
	case stCR:
		return 1, "\r"
	}
	return 0, "\r\n"
}

// end appends to s.out what ends the data: what DotWriter's Close writes
// in the state the body left it in (the CRLF it adds after a body that
// does not end in one, the LF after a last bare CR), and the final dot.
func (s *stuffer) end() {
	switch s.state {
	case stCR:
		s.out = append(s.out, '\n')
	case stBegin, stData:
		s.out = append(s.out, '\r', '\n')
	}
	s.out = append(s.out, ".\r\n"...)
}
