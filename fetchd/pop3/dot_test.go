package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// stuff encodes msg as a multi-line response body the way a correct server
// does (RFC 1939 §3): a "." at a line start (after CRLF) is doubled, CRLF is
// added if msg does not end with one, then the terminator.
func stuff(msg []byte) []byte {
	var b bytes.Buffer
	lineStart := true
	for i, ch := range msg {
		if lineStart && ch == '.' {
			b.WriteByte('.')
		}
		b.WriteByte(ch)
		lineStart = ch == '\n' && i > 0 && msg[i-1] == '\r'
	}
	b.Write(terminated(msg)[len(msg):])
	b.WriteString(".\r\n")
	return b.Bytes()
}

// terminated is what a client gets back for msg: msg itself, with CRLF
// added if it is not empty and does not end with CRLF.
func terminated(msg []byte) []byte {
	if len(msg) == 0 || bytes.HasSuffix(msg, []byte("\r\n")) {
		return msg
	}
	return append(bytes.Clone(msg), '\r', '\n')
}

// nastyMessage has every case the dot reader must pass through unchanged.
func nastyMessage() []byte {
	var b bytes.Buffer
	b.WriteString("Subject: dots\r\n\r\n")
	b.WriteString(".leading dot\r\n")
	b.WriteString("..two dots\r\n")
	b.WriteString(".\r\n") // a lone dot line (stuffed on the wire)
	b.WriteString(".\n")   // bare-LF dot line: never a terminator
	b.WriteString("bare LF\n.after bare LF\r\n")
	b.WriteString("bare CR\r.after bare CR\r\n")
	b.WriteString("NUL \x00 and 8-bit \xff\xfe\x80\r\n")
	b.WriteString("." + strings.Repeat("x", 100<<10) + "\r\n") // 100 KB line starting with a dot
	b.WriteString(strings.Repeat("y", bufSize-1) + "\r\n")     // CRLF split across buffer fills
	b.WriteString(".\r\n")
	b.WriteString("last line without CRLF")
	return b.Bytes()
}

// unstuff runs copyDot over wire with a buffer of size bufsize and then reads
// the next status line, which must be "+OK next".
func unstuff(t testing.TB, wire []byte, bufsize int) []byte {
	r := bufio.NewReaderSize(bytes.NewReader(append(bytes.Clone(wire), "+OK next\r\n"...)), bufsize)
	var out bytes.Buffer
	n, werr, rerr := copyDot(r, &out, func() {})
	if werr != nil || rerr != nil {
		t.Fatalf("copyDot: werr=%v rerr=%v", werr, rerr)
	}
	if n != int64(out.Len()) {
		t.Fatalf("copyDot counted %d octets, wrote %d", n, out.Len())
	}
	next, err := r.ReadString('\n')
	if err != nil || next != "+OK next\r\n" {
		t.Fatalf("after the terminator: got %q, %v; want the next reply (out of sync)", next, err)
	}
	return out.Bytes()
}

func TestCopyDotRoundTrip(t *testing.T) {
	msg := nastyMessage()
	for _, size := range []int{16, 4096, bufSize} {
		got := unstuff(t, stuff(msg), size)
		if want := terminated(msg); !bytes.Equal(got, want) {
			t.Errorf("buffer %d: got %d octets, want %d; first difference at %d", size, len(got), len(want), firstDiff(got, want))
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestCopyDotWire feeds raw wire bytes, including what broken servers send.
func TestCopyDotWire(t *testing.T) {
	long := strings.Repeat("x", 15) // with CR, exactly fills a 16-octet buffer
	tests := []struct{ name, wire, want string }{
		{"empty body", ".\r\n", ""},
		{"stuffed dot line", "..\r\n.\r\n", ".\r\n"},
		{"unstuffed bare-LF dot line does not end", "A\r\n.\nB\r\n.\r\n", "A\r\n\nB\r\n"},
		{"dot after bare LF is data", "A\n.B\r\n.\r\n", "A\n.B\r\n"},
		{"dot after bare CR is data", "A\r..B\r\n.\r\n", "A\r..B\r\n"},
		{"CRLF split over buffer fills", long + "\r\n.\r\n", long + "\r\n"},
		{"stuffed dot after split CRLF", long + "\r\n..y\r\n.\r\n", long + "\r\n.y\r\n"},
		{"dot space is not a terminator", ". \r\n.\r\n", " \r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unstuff(t, []byte(tt.wire), 16); string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCopyDotNoTerminator: EOF before ".\r\n" at a line start is an error,
// never a short message. ".\r\n" after a bare LF is not a terminator.
func TestCopyDotNoTerminator(t *testing.T) {
	for _, wire := range []string{"", "abc", "abc\r\n", "abc\r\n.", "abc\r\n.\r", "abc\n.\r\n", "abc\r\n.\n"} {
		r := bufio.NewReaderSize(strings.NewReader(wire), 16)
		_, _, rerr := copyDot(r, io.Discard, func() {})
		if !errors.Is(rerr, io.ErrUnexpectedEOF) {
			t.Errorf("%q: got %v, want io.ErrUnexpectedEOF", wire, rerr)
		}
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after < len(p) {
		n := w.after
		w.after = 0
		return n, errors.New("disk full")
	}
	w.after -= len(p)
	return len(p), nil
}

// TestCopyDotWriterFails: the body is still read to its end so the next
// reply is in sync, and the write error is reported.
func TestCopyDotWriterFails(t *testing.T) {
	wire := append(stuff(nastyMessage()), "+OK next\r\n"...)
	r := bufio.NewReaderSize(bytes.NewReader(wire), 64)
	n, werr, rerr := copyDot(r, &failWriter{after: 100}, func() {})
	if rerr != nil || werr == nil || werr.Error() != "disk full" || n != 100 {
		t.Fatalf("got n=%d werr=%v rerr=%v; want 100, disk full, nil", n, werr, rerr)
	}
	if next, _ := r.ReadString('\n'); next != "+OK next\r\n" {
		t.Fatalf("after the body: %q, want the next reply", next)
	}
}

func FuzzDotReader(f *testing.F) {
	for _, s := range []string{"", ".", "..", ".\r\n", ".\n", "\r\n.\r\n", "a\r\n.\nb", "a\r", "\r\n\r\n",
		"x\x00\xff\r.\r\n..\r\n", string(nastyMessage()[:200]), strings.Repeat("z", 40) + "\r\n.."} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		wire := stuff(msg)
		for _, size := range []int{16, bufSize} {
			if got := unstuff(t, wire, size); !bytes.Equal(got, terminated(msg)) {
				t.Fatalf("buffer %d: round trip of %q gave %q", size, msg, got)
			}
		}
	})
}

// repeatReader yields line over and over.
type repeatReader struct {
	line []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.line[r.off:])
		n += c
		r.off = (r.off + c) % len(r.line)
	}
	return n, nil
}

// TestCopyDotConstantMemory streams a 64 MB message (every line stuffed)
// and checks that what copyDot allocates does not depend on its size.
func TestCopyDotConstantMemory(t *testing.T) {
	line := []byte(".." + strings.Repeat("m", 1000) + "\r\n")
	const lines = 64 << 10
	wire := io.MultiReader(io.LimitReader(&repeatReader{line: line}, int64(len(line)*lines)), strings.NewReader(".\r\n"))
	r := bufio.NewReaderSize(wire, bufSize)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n, werr, rerr := copyDot(r, io.Discard, func() {})
	runtime.ReadMemStats(&after)
	if werr != nil || rerr != nil || n != int64((len(line)-1)*lines) {
		t.Fatalf("copyDot = %d, %v, %v; want %d octets", n, werr, rerr, (len(line)-1)*lines)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("copyDot allocated %d bytes for a %d-byte message", alloc, n)
	}
}
