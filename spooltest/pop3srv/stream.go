package pop3srv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// pieceSize bounds what is read from a message file at once: one line, or
// a piece of a longer one. Messages are streamed, never read whole.
const pieceSize = 4096

// sendMessage answers RETR (top < 0) or TOP (top = body lines wanted) for
// message n. sent reports whether the +OK went out; after that an error
// can only drop the connection, as the reply cannot turn into -ERR.
func (c *session) sendMessage(m *message, n, top int) (sent bool, err error) {
	f, err := os.Open(m.path)
	if err != nil {
		c.s.logf("open message %d: %v", n, err)
		c.err("[SYS/TEMP] message %d unavailable", n)
		return false, nil
	}
	defer f.Close() // read-only; a close error changes nothing
	if top < 0 {
		c.ok("%d octets", m.size)
	} else {
		c.ok("top of message %d follows", n)
	}
	st := &stuffer{w: c.w}
	if err := c.stream(bufio.NewReaderSize(f, pieceSize), st, n, newTopFilter(top)); err != nil {
		return true, fmt.Errorf("send message %d: %w", n, err)
	}
	return true, st.finish()
}

// stream copies the file to st piece by piece, asking the fault hook
// before each piece.
func (c *session) stream(r *bufio.Reader, st *stuffer, n int, tf *topFilter) error {
	for {
		piece, err := r.ReadSlice('\n')
		if len(piece) > 0 && !tf.more() {
			return nil
		}
		if len(piece) > 0 && c.s.fault(Event{Name: EvRetr, Msg: n, Bytes: st.out}) {
			return errDropped
		}
		st.write(piece)
		tf.saw(piece)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("read: %w", err)
		}
	}
}

// stuffer writes message data as a multi-line response body (RFC 1939 §3):
// a line starting with "." gets another "." in front, and the body ends with
// CRLF and then ".\r\n". Lines end at CRLF only, as a strict client sees
// them: a bare LF is passed on as it is and starts no line.
type stuffer struct {
	w     *bufio.Writer
	seen  int64   // message octets passed in
	out   int64   // octets written (stuffing included)
	last2 [2]byte // the last two message octets passed in
}

func (s *stuffer) lineStart() bool {
	return s.seen == 0 || s.last2 == [2]byte{'\r', '\n'}
}

// write takes a piece that ends at the latest at a LF, so every line start
// is the start of a piece. Write errors are sticky in bufio; finish reports.
func (s *stuffer) write(p []byte) {
	if len(p) == 0 {
		return
	}
	if p[0] == '.' && s.lineStart() {
		_ = s.w.WriteByte('.')
		s.out++
	}
	_, _ = s.w.Write(p)
	s.out += int64(len(p))
	s.seen += int64(len(p))
	if len(p) >= 2 {
		s.last2 = [2]byte{p[len(p)-2], p[len(p)-1]}
	} else {
		s.last2 = [2]byte{s.last2[1], p[0]}
	}
}

// finish adds the CRLF a message without one at its end needs, and the
// terminating ".\r\n".
func (s *stuffer) finish() error {
	if s.seen == 0 || s.last2 != [2]byte{'\r', '\n'} {
		_, _ = s.w.WriteString("\r\n")
	}
	_, _ = s.w.WriteString(".\r\n")
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	return nil
}

// topFilter passes the header, the empty line after it and then body lines
// up to the count asked for (RFC 1939 §7, TOP). For counting, a line ends at
// any LF, so a bare-LF message gets sensible TOP output too.
type topFilter struct {
	all      bool
	inHeader bool
	left     int  // body lines still wanted
	atStart  bool // the next piece starts a line
}

func newTopFilter(top int) *topFilter {
	return &topFilter{all: top < 0, inHeader: true, left: top, atStart: true}
}

// more reports whether the next piece is still wanted.
func (t *topFilter) more() bool {
	return t.all || t.inHeader || t.left > 0 || !t.atStart
}

func (t *topFilter) saw(p []byte) {
	if t.all || len(p) == 0 {
		return
	}
	complete := p[len(p)-1] == '\n'
	empty := t.atStart && (string(p) == "\n" || string(p) == "\r\n")
	switch {
	case t.inHeader && empty:
		t.inHeader = false
	case !t.inHeader && complete:
		t.left--
	}
	t.atStart = complete
}

// sendHalf answers RETR with +OK and the first half of m, then drops the
// connection (Server.Broken, BreakCut).
func (c *session) sendHalf(m *message) error {
	b, err := os.ReadFile(m.path)
	if err != nil {
		return fmt.Errorf("read message: %w", err)
	}
	c.ok("%d octets", m.size)
	_, _ = c.w.Write(b[:len(b)/2])
	_ = c.w.Flush()
	return errDropped
}

// endlessPace is the pause between the lines of a message that never
// ends: slow enough that only a client's overall deadline stops it (each
// read gets a line in time, and the size grows by 6 KiB a second).
const endlessPace = 10 * time.Millisecond

// sendEndless answers RETR with +OK and message lines, one every
// endlessPace, until the client hangs up or the server closes
// (Server.Broken, BreakEndless).
func (c *session) sendEndless() error {
	c.ok("1000 octets")
	line := []byte("Subject: this message never ends, and this line says so again\r\n")
	for {
		_ = c.conn.SetDeadline(time.Now().Add(c.s.timeout()))
		if _, err := c.w.Write(line); err != nil {
			return fmt.Errorf("write endless message: %w", err)
		}
		if err := c.w.Flush(); err != nil {
			return fmt.Errorf("write endless message: %w", err)
		}
		time.Sleep(endlessPace)
	}
}
