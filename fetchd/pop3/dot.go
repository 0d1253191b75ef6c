package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// copyDot copies the body of a multi-line response (RFC 1939 §3) from r to
// w, byte for byte, and stops right after the terminator so r is in sync for
// the next reply.
//
// A line start is the beginning of the body or the octet after a CRLF; bare
// LF and bare CR are data. At a line start, ".\r\n" ends the body and any
// other line beginning with "." loses that one dot ("byte-stuffing").
// Everything else, NUL, 8-bit octets and lines of any length included,
// passes through unchanged. This is why net/textproto's DotReader is not
// used: it rewrites CRLF to LF and also ends at ".\n".
//
// The body is handled a window at a time (see window): whatever r holds
// through its last LF, written to w in spans between the stuffed dots, so
// a message costs a few Writes per buffer, not one per line. Memory stays
// at r's buffer size: lines longer than the buffer are copied in pieces.
// tick is called after every window (to extend the read deadline while
// data flows).
//
// If w fails, the rest of the body is still read and discarded so that the
// session stays usable; the write error is returned as werr. A read error
// (including EOF before the terminator) is returned as rerr and means the
// session is lost; the octets of the line it cut short are not written.
func copyDot(r *bufio.Reader, w io.Writer, tick func()) (n int64, werr, rerr error) {
	u := unstuffer{w: w, lineStart: true}
	for {
		win, err := window(r)
		if err != nil {
			return u.n, u.werr, bodyReadErr(err)
		}
		tick()
		used, done := u.unstuff(win)
		r.Discard(used) // buffered: cannot fail
		if done {
			return u.n, u.werr, nil
		}
	}
}

// window returns the next run of r's buffered octets that can be
// unstuffed whole: through the last LF buffered, or the whole buffer if it
// holds no LF (a piece of a line longer than the buffer). It reads from the
// connection only when neither is there; a line not yet ended stays
// buffered until its LF arrives, so a terminator is never split between
// two windows. The octets stay in r until discarded.
func window(r *bufio.Reader) ([]byte, error) {
	need := 1
	for {
		if _, err := r.Peek(need); err != nil {
			return nil, err
		}
		buf, _ := r.Peek(r.Buffered())
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			return buf[:i+1], nil
		}
		if len(buf) == r.Size() {
			return buf, nil
		}
		need = len(buf) + 1
	}
}

// unstuffer is copyDot's state between windows.
type unstuffer struct {
	w         io.Writer
	n         int64 // octets written
	werr      error // w failed: the rest is read, not written
	lineStart bool  // the next octet starts a line
	prev      byte  // the last octet of the previous window
}

// terminator ends a multi-line response at a line start (RFC 1939 §3).
var terminator = []byte(".\r\n")

// unstuff writes window win without its stuffed dots and says how much of
// it was used: all of it, or, when done, up to and including the
// terminator (what follows belongs to the next reply).
func (u *unstuffer) unstuff(win []byte) (used int, done bool) {
	from := 0
	for at := u.firstDot(win); at >= 0; at = nextDot(win, at+1) {
		u.write(win[from:at])
		if bytes.HasPrefix(win[at:], terminator) {
			return at + len(terminator), true
		}
		from = at + 1
	}
	u.write(win[from:])
	u.lineStart, u.prev = nextLineStart(win, u.prev)
	return len(win), false
}

// firstDot returns the index of the first line start in win holding a
// dot, or -1. A window starts a line if the previous one ended in CRLF;
// if the previous one ended in CR (the buffer filled there) and win
// starts with LF, its second octet starts a line.
func (u *unstuffer) firstDot(win []byte) int {
	switch {
	case u.lineStart && win[0] == '.':
		return 0
	case u.prev == '\r' && win[0] == '\n' && len(win) > 1 && win[1] == '.':
		return 1
	}
	return nextDot(win, 0)
}

// nextDot returns the index of the first dot at or after from that
// follows a CRLF in win, or -1. It looks for dots, not for line ends: the
// bulk of a large message (base64) has none, so the search is one pass
// over the window, where a search for line ends stops at every line.
// After a few dots inside lines (text) it looks at each line start
// instead, which then stops once a line rather than at every full stop.
func nextDot(win []byte, from int) int {
	for range dotsInLines {
		i := bytes.IndexByte(win[from:], '.')
		if i < 0 {
			return -1
		}
		at := from + i
		if at >= 2 && win[at-2] == '\r' && win[at-1] == '\n' {
			return at
		}
		from = at + 1
	}
	return nextLineDot(win, from)
}

// dotsInLines is how many dots inside lines nextDot passes over before it
// looks at line starts instead.
const dotsInLines = 8

// nextLineDot is nextDot by line ends: the first LF at or after from
// that follows a CR and is followed by a dot.
func nextLineDot(win []byte, from int) int {
	for {
		i := bytes.IndexByte(win[from:], '\n')
		if i < 0 {
			return -1
		}
		at := from + i + 1
		if at >= 2 && at < len(win) && win[at] == '.' && win[at-2] == '\r' {
			return at
		}
		from = at
	}
}

func (u *unstuffer) write(p []byte) {
	if u.werr != nil || len(p) == 0 {
		return
	}
	m, err := u.w.Write(p)
	u.n += int64(m)
	u.werr = shortWrite(m, len(p), err)
}

// nextLineStart reports whether the octet after chunk starts a line, given
// prev, the octet before chunk. A chunk ends either at LF or where the
// buffer filled up, so a CRLF split between two chunks arrives as "...\r"
// followed by a chunk that starts with "\n".
func nextLineStart(chunk []byte, prev byte) (bool, byte) {
	last := chunk[len(chunk)-1]
	if last != '\n' {
		return false, last
	}
	before := prev
	if len(chunk) >= 2 {
		before = chunk[len(chunk)-2]
	}
	return before == '\r', last
}

func shortWrite(m, want int, err error) error {
	if err == nil && m < want {
		err = io.ErrShortWrite
	}
	return err
}

func bodyReadErr(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("connection closed before the end of the multi-line response: %w", io.ErrUnexpectedEOF)
	}
	return err
}

// body sends cmd, unless it was sent ahead (Prefetch), and streams its
// multi-line reply (RETR, TOP) into w.
func (c *Client) body(cmd string, sent bool, w io.Writer) (int64, error) {
	if err := c.begin(cmd, sent); err != nil {
		return 0, err
	}
	n, werr, rerr := copyDot(c.r, w, c.extendRead)
	if c.opt.Trace != nil {
		c.opt.Trace('S', fmt.Sprintf("[%s body: %d octets, not traced]", cmd, n))
	}
	if rerr != nil {
		return n, c.fatal(cmd, fmt.Errorf("read message after %d octets: %w", n, rerr))
	}
	if werr != nil {
		return n, fmt.Errorf("pop3 %s: write message after %d octets (rest discarded, session still usable): %w", cmd, n, werr)
	}
	return n, nil
}

// begin reads the status line of cmd, sending cmd first unless it was
// sent ahead.
func (c *Client) begin(cmd string, sent bool) error {
	if !sent {
		_, err := c.cmd(cmd)
		return err
	}
	if err := c.alive(cmd); err != nil {
		return err
	}
	if err := c.setDeadline(); err != nil {
		return c.fatal(cmd, err)
	}
	_, err := c.readStatus(cmd)
	return err
}

// readListing reads the lines of a multi-line reply whose +OK line has
// already been read (LIST, UIDL, CAPA), unstuffed and without CRLF, and
// passes each to fn. Each line may be at most maxLine octets and there may be
// at most maxLines of them; either limit breaks the session. An error from fn
// is remembered, the rest of the listing is still read so the session stays in
// sync, and the first such error is returned.
func (c *Client) readListing(cmd string, maxLines int, fn func(no int, line []byte) error) error {
	var first error
	for no := 1; ; no++ {
		line, err := c.readLine(cmd)
		if err != nil {
			return err
		}
		if string(line) == ".\r\n" {
			c.traceListingEnd(cmd, no-1)
			return first
		}
		if no > maxLines {
			return c.fatal(cmd, fmt.Errorf("%w: listing has more than %d lines", ErrProtocol, maxLines))
		}
		if no <= TraceListingLines {
			c.traceLine(trimEOL(line))
		}
		if line[0] == '.' {
			line = line[1:] // RFC 1939 §3 byte-stuffing
		}
		if err := fn(no, trimEOL(line)); err != nil && first == nil {
			first = fmt.Errorf("pop3 %s: %w", cmd, err)
		}
	}
}

// Retr streams message n, dot-unstuffed and byte exact, into w and returns
// the number of octets written (RFC 1939 §5 RETR). The message is never held
// in memory.
//
// A failure of w does not break the session (the rest of the message is read
// and discarded); an -ERR reply is an *Error; any read error or an early EOF
// is an error and leaves the Client unusable. A nil error means the whole
// message up to the terminator was received and written. If RETR n was
// sent ahead (Prefetch), its reply is read without sending it again.
func (c *Client) Retr(n int, w io.Writer) (int64, error) {
	if err := checkNum("RETR", n); err != nil {
		return 0, err
	}
	return c.body(fmt.Sprintf("RETR %d", n), c.takeAhead(n), w)
}

// Top streams the header and the first lines lines of the body of message n
// into w (RFC 1939 §7 TOP), as Retr does.
func (c *Client) Top(n, lines int, w io.Writer) (int64, error) {
	if err := checkNum("TOP", n); err != nil {
		return 0, err
	}
	if lines < 0 {
		return 0, fmt.Errorf("pop3 TOP %d: negative line count %d", n, lines)
	}
	return c.body(fmt.Sprintf("TOP %d %d", n, lines), false, w)
}

func checkNum(cmd string, n int) error {
	if n < 1 {
		return fmt.Errorf("pop3 %s: invalid message number %d", cmd, n)
	}
	return nil
}
