package smtpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"example.org/popspool/shared/liveness"
)

// Limits on what a server may send as one reply (RFC 5321 §4.5.3.1.5
// allows 512 octets a line; real servers stay far below these). maxLine
// is go-smtp's own limit after the greeting, so one limit holds before
// TLS (greeting, EHLO, STARTTLS, read by smtpc) and after.
const (
	maxLine       = 2000     // bytes of one line, CRLF included
	maxReplyLines = 100      // lines of one multi-line reply
	maxReply      = 32 << 10 // bytes of one reply, all lines
)

// wire sits between go-smtp and the transport and fixes what go-smtp
// v0.25.1 gets wrong on the wire (see dependencies.md §2):
//
//   - Read hands out one whole reply line per call, adding the SP after a
//     bare reply code ("250\r\n" -> "250 \r\n"; RFC 5321 §4.2: clients MUST
//     accept a missing text) and upper-casing EHLO keywords (§2.4: they are
//     case-insensitive; go-smtp looks them up in upper case only). One line
//     per Read also means no reader above ever buffers past a reply, which
//     the STARTTLS injection check relies on.
//   - Write sets a write deadline first: the RFC's "data block" timeout,
//     which go-smtp lacks while the body is written.
//   - It remembers the last bytes written, so a failure can be placed
//     before or after the final "." (RFC 1047).
//
// The transport is swapped for a *tls.Conn on STARTTLS; the wire stays on
// top, so it always sees clear text. It is used by one goroutine at a
// time, except kill.
type wire struct {
	net.Conn // current transport: raw, or TLS over raw
	raw      net.Conn
	block    time.Duration
	broken   atomic.Bool

	rbuf     [4096]byte
	in       []byte // bytes read, not yet a whole line
	out      []byte // fixed line(s) ready for the reader
	obuf     []byte
	rerr     error
	ehloLine int // >0: reading the reply to EHLO/LHLO, at this line
	lines    int // lines of the reply being read, so far
	size     int // bytes of the reply being read, so far

	inData bool
	tail   [5]byte // last bytes written

	beat *liveness.Loop // the work loop using the connection, marked at each read and write
	tr   *tracer        // nil unless Options.Trace is set
}

func newWire(raw net.Conn, block time.Duration) *wire {
	return &wire{Conn: raw, raw: raw, block: block}
}

// kill closes the transport from any goroutine; the Conn is then broken.
func (w *wire) kill() {
	w.broken.Store(true)
	_ = w.raw.Close() // nothing to do about a failed close of a dead conn
}

func (w *wire) Read(p []byte) (int, error) {
	for len(w.out) == 0 {
		if w.rerr != nil && len(w.in) == 0 {
			return 0, w.rerr
		}
		w.fill()
	}
	n := copy(p, w.out)
	w.out = w.out[n:]
	return n, nil
}

// fill reads until one line is complete and puts it, fixed, in w.out.
// A reply over the limits ends the session: w.in never holds more than
// maxLine plus one read.
func (w *wire) fill() {
	for {
		i := bytes.IndexByte(w.in, '\n')
		if i >= maxLine || i < 0 && len(w.in) > maxLine {
			w.overflow(fmt.Errorf("%w: a line longer than %d bytes", ErrReplyTooLong, maxLine))
			return
		}
		if i >= 0 {
			line := w.in[:i+1]
			if err := w.count(line); err != nil {
				w.overflow(err)
				return
			}
			if w.tr != nil {
				w.tr.received(line)
			}
			w.out = w.fixLine(line)
			w.in = w.in[:copy(w.in, w.in[i+1:])]
			return
		}
		if w.rerr != nil {
			w.out = append(w.obuf[:0], w.in...)
			w.in = w.in[:0]
			return
		}
		n, err := w.Conn.Read(w.rbuf[:])
		if n > 0 {
			w.beat.Busy()
		}
		w.in = append(w.in, w.rbuf[:n]...)
		w.rerr = err
	}
}

// count adds line to the reply being read and checks the reply's limits;
// a line that is not "ddd-" ends the reply (RFC 5321 §4.2.1).
func (w *wire) count(line []byte) error {
	w.lines++
	w.size += len(line)
	switch {
	case w.lines > maxReplyLines:
		return fmt.Errorf("%w: more than %d lines", ErrReplyTooLong, maxReplyLines)
	case w.size > maxReply:
		return fmt.Errorf("%w: more than %d bytes", ErrReplyTooLong, maxReply)
	}
	if len(line) < 4 || line[3] != '-' {
		w.lines, w.size = 0, 0
	}
	return nil
}

// overflow drops what is buffered and ends the session with err: the
// rest of the reply would have to be read to find the next one.
func (w *wire) overflow(err error) {
	w.in = w.in[:0]
	w.rerr = err
	w.kill()
}

func (w *wire) fixLine(line []byte) []byte {
	body := bytes.TrimRight(line, "\r\n")
	out := append(w.obuf[:0], body...)
	if len(body) == 3 && isDigits(body) {
		out = append(out, ' ') // RFC 5321 §4.2: "MUST be prepared" for no text
	}
	if w.ehloLine > 0 {
		w.fixKeyword(out)
	}
	w.obuf = append(out, line[len(body):]...)
	return w.obuf
}

// fixKeyword upper-cases the keyword of an EHLO reply line after the first
// (RFC 5321 §2.4, §4.1.1.1) and notes where the reply ends.
func (w *wire) fixKeyword(line []byte) {
	coded := len(line) >= 4 && isDigits(line[:3])
	if coded && w.ehloLine > 1 {
		for i := 4; i < len(line) && line[i] != ' '; i++ {
			if 'a' <= line[i] && line[i] <= 'z' {
				line[i] -= 'a' - 'A'
			}
		}
	}
	if coded && line[3] == '-' {
		w.ehloLine++
	} else {
		w.ehloLine = 0
	}
}

func (w *wire) Write(p []byte) (int, error) {
	if !w.inData && isHello(p) {
		w.ehloLine = 1
	}
	if w.block > 0 {
		if err := w.Conn.SetWriteDeadline(time.Now().Add(w.block)); err != nil {
			return 0, err
		}
	}
	if w.tr != nil {
		w.tr.sent(p, w.inData)
	}
	n, err := w.Conn.Write(p)
	if n > 0 {
		w.beat.Busy()
	}
	w.remember(p[:n])
	return n, err
}

func (w *wire) remember(b []byte) {
	t := w.tail[:]
	if len(b) >= len(t) {
		copy(t, b[len(b)-len(t):])
		return
	}
	copy(t, t[len(b):])
	copy(t[len(t)-len(b):], b)
}

// beginData marks the start of the body; the DATA line ended in CRLF.
func (w *wire) beginData() {
	w.inData = true
	w.tail = [5]byte{0, 0, 0, '\r', '\n'}
}

func (w *wire) endData() {
	w.inData = false
	if w.tr != nil {
		w.tr.bodyNote() // no reply came
	}
}

// dotSent reports whether the final "\r\n.\r\n" has left us whole. The
// dot-stuffed body cannot contain it (RFC 5321 §4.5.2).
func (w *wire) dotSent() bool { return string(w.tail[:]) == "\r\n.\r\n" }

// pending reports bytes received but not yet handed to a reader.
func (w *wire) pending() bool { return len(w.in) > 0 || len(w.out) > 0 }

// inject queues a line as if the server had sent it.
func (w *wire) inject(line string) { w.out = append(w.out, line...) }

// upgrade runs a TLS handshake over the current transport and swaps it in.
func (w *wire) upgrade(ctx context.Context, cfg *tls.Config, timeout time.Duration) error {
	tc := tls.Client(w.Conn, cfg)
	if err := tc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	w.Conn = tc
	if w.tr != nil {
		w.tr.fn('C', "[TLS handshake done, "+tls.VersionName(tc.ConnectionState().Version)+"]")
	}
	return tc.SetDeadline(time.Time{})
}

func (w *wire) tls() bool {
	_, ok := w.Conn.(*tls.Conn)
	return ok
}

// loopback reports a unix socket or a loopback peer address.
func (w *wire) loopback() bool {
	switch a := w.raw.RemoteAddr().(type) {
	case *net.UnixAddr:
		return true
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	}
	return false
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func isHello(p []byte) bool {
	return len(p) > 5 && (bytes.EqualFold(p[:5], []byte("EHLO ")) || bytes.EqualFold(p[:5], []byte("LHLO ")))
}
