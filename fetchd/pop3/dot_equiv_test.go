package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// refCopyDot is copyDot as it was before it worked a window at a time: one
// bufio.Reader.ReadSlice('\n') and one Write per line (or per buffer of a
// longer line). It is the reference the window-at-a-time copyDot must
// match: the same octets written in the same order, the same count, the
// same errors, and the reader left at the same place.
func refCopyDot(r *bufio.Reader, w io.Writer, tick func()) (n int64, werr, rerr error) {
	lineStart, prev := true, byte(0)
	for {
		chunk, err := r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return n, werr, bodyReadErr(err)
		}
		tick()
		out := chunk
		if lineStart && chunk[0] == '.' {
			if string(chunk) == ".\r\n" {
				return n, werr, nil
			}
			out = chunk[1:]
		}
		if werr == nil {
			m, err := w.Write(out)
			n += int64(m)
			werr = shortWrite(m, len(out), err)
		}
		lineStart, prev = refNextLineStart(chunk, prev)
	}
}

func refNextLineStart(chunk []byte, prev byte) (bool, byte) {
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

// dotRun is what one unstuffer did with one input.
type dotRun struct {
	out        string
	n          int64
	werr, rerr string
	rest       string // what the reader still had after a clean end
}

// sink is a writer that takes at most limit octets in all (a full disk);
// limit < 0 takes everything.
type sink struct {
	bytes.Buffer
	limit int
}

func (s *sink) Write(p []byte) (int, error) {
	if s.limit < 0 || len(p) <= s.limit-s.Len() {
		return s.Buffer.Write(p)
	}
	n, _ := s.Buffer.Write(p[:s.limit-s.Len()])
	return n, errors.New("disk full")
}

type unstufferFunc func(*bufio.Reader, io.Writer, func()) (int64, error, error)

// runDot runs f over the octets src yields, through a bufio.Reader of
// size bufsize, into a sink of limit octets.
func runDot(f unstufferFunc, src io.Reader, bufsize, limit int) dotRun {
	r := bufio.NewReaderSize(src, bufsize)
	w := &sink{limit: limit}
	n, werr, rerr := f(r, w, func() {})
	run := dotRun{out: w.String(), n: n, werr: errText(werr), rerr: errText(rerr)}
	if rerr == nil {
		rest, _ := io.ReadAll(r)
		run.rest = string(rest)
	}
	return run
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected EOF: " + err.Error()
	}
	return err.Error()
}

// sameAsRef fails t if copyDot and refCopyDot differ on wire, read
// through reader (which makes a fresh reader of the octets each time).
func sameAsRef(t *testing.T, what string, wire []byte, reader func([]byte) io.Reader, bufsize, limit int) {
	t.Helper()
	want := runDot(refCopyDot, reader(wire), bufsize, limit)
	got := runDot(copyDot, reader(wire), bufsize, limit)
	if got != want {
		t.Fatalf("%s: buffer %d, limit %d, wire %q:\ngot  %+v\nwant %+v", what, bufsize, limit, wire, got, want)
	}
}

func whole(b []byte) io.Reader    { return bytes.NewReader(b) }
func oneByte(b []byte) io.Reader  { return iotest.OneByteReader(bytes.NewReader(b)) }
func halfData(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }

// TestCopyDotSameAsLineByLine runs both unstuffers on every string of up
// to 7 octets over {'.', CR, LF, 'a'}, after paddings that make a 16-octet
// buffer fill at each of its positions (so CR | LF, CRLF | ".", CRLF. |
// CRLF and a long line cut anywhere are all there), each once followed by
// a terminator and the next reply and once ended by EOF, read whole, one
// octet at a time and in halves.
func TestCopyDotSameAsLineByLine(t *testing.T) {
	alphabet := []byte{'.', '\r', '\n', 'a'}
	pads := []string{"", "\r\n", "aaaaaaaaa", "aaaaaaaaaaaa", "aaaaaaaaaaaaaa", "aaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaa", "\r\naaaaaaaaaaaaa"}
	readers := []func([]byte) io.Reader{whole, oneByte, halfData}
	if testing.Short() {
		pads, readers = pads[:3], readers[:2]
	}
	cases := 0
	var s []byte
	var gen func(depth int)
	gen = func(depth int) {
		for _, pad := range pads {
			body := append([]byte(pad), s...)
			for _, wire := range [][]byte{append(bytes.Clone(body), "\r\n.\r\n+OK next\r\n"...), body} {
				for _, reader := range readers {
					sameAsRef(t, "short", wire, reader, 16, -1)
					cases++
				}
			}
		}
		if depth == 7 {
			return
		}
		for _, c := range alphabet {
			s = append(s, c)
			gen(depth + 1)
			s = s[:len(s)-1]
		}
	}
	gen(0)
	t.Logf("%d inputs", cases)
}

// shortReader returns what src has in reads of random length, 1 to max
// octets, now and then none at all.
type shortReader struct {
	src *bytes.Reader
	rnd *rand.Rand
	max int
}

func (r *shortReader) Read(p []byte) (int, error) {
	if r.rnd.IntN(8) == 0 {
		return 0, nil
	}
	return r.src.Read(p[:min(len(p), 1+r.rnd.IntN(r.max))])
}

// randomWire returns octets drawn mostly from dot, CR and LF, with runs of
// letters now and then longer than the buffer.
func randomWire(rnd *rand.Rand, size int) []byte {
	var b bytes.Buffer
	for b.Len() < size {
		switch k := rnd.IntN(12); {
		case k < 3:
			b.WriteByte('.')
		case k < 6:
			b.WriteString("\r\n")
		case k == 6:
			b.WriteByte('\r')
		case k == 7:
			b.WriteByte('\n')
		case k == 8:
			b.WriteString("\r\n.\r\n")
		case k == 9:
			b.Write(bytes.Repeat([]byte{'x'}, rnd.IntN(200)))
		default:
			b.WriteByte(byte(rnd.IntN(256)))
		}
	}
	return b.Bytes()
}

// TestCopyDotRandomSameAsLineByLine: random bodies, some ending, some
// not, read in random short reads through small buffers, into writers
// that fail now and then.
func TestCopyDotRandomSameAsLineByLine(t *testing.T) {
	rnd := rand.New(rand.NewPCG(12, 1))
	rounds := 20000
	if testing.Short() {
		rounds = 2000
	}
	for i := range rounds {
		wire := randomWire(rnd, rnd.IntN(600))
		if rnd.IntN(4) > 0 {
			wire = append(wire, "\r\n.\r\n+OK next\r\n"...)
		}
		bufsize := []int{16, 17, 31, 64, 100, 4096}[rnd.IntN(6)]
		limit := -1
		if rnd.IntN(5) == 0 {
			limit = rnd.IntN(len(wire) + 1)
		}
		maxRead := 1 + rnd.IntN(2*bufsize)
		seed := rnd.Uint64()
		reader := func(b []byte) io.Reader {
			return &shortReader{src: bytes.NewReader(b), rnd: rand.New(rand.NewPCG(seed, 2)), max: maxRead}
		}
		sameAsRef(t, fmt.Sprintf("round %d", i), wire, reader, bufsize, limit)
	}
}

// splitReader yields its octets in two reads, cut at at.
type splitReader struct {
	b  []byte
	at int
}

func (r *splitReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	end := len(r.b)
	if r.at > 0 {
		end, r.at = r.at, 0
	}
	n := copy(p, r.b[:end])
	r.b = r.b[n:]
	return n, nil
}

// TestCopyDotHostile: the terminator split by the network at every
// position and by the buffer at every position, a body cut short at every
// position (EOF before the terminator), and a body that never ends.
func TestCopyDotHostile(t *testing.T) {
	msg := stuff(nastyMessage()[:300])
	wire := append(bytes.Clone(msg), "+OK next\r\n"...)
	want := string(terminated(nastyMessage()[:300]))
	for at := 1; at < len(wire); at++ {
		got := runDot(copyDot, &splitReader{b: wire, at: at}, 64, -1)
		if got.out != want || got.rerr != "" || got.rest != "+OK next\r\n" {
			t.Fatalf("split at %d: %+v", at, got)
		}
		sameAsRef(t, fmt.Sprintf("split at %d", at), wire, func(b []byte) io.Reader { return &splitReader{b: b, at: at} }, 64, -1)
	}
	for pad := range 40 {
		padded := append(bytes.Repeat([]byte{'p'}, pad), wire...)
		got := runDot(copyDot, whole(padded), 16, -1)
		if got.out != string(padded[:pad])+want || got.rest != "+OK next\r\n" {
			t.Fatalf("padded by %d: %+v", pad, got)
		}
	}
	for cut := 0; cut < len(msg); cut++ {
		for _, reader := range []func([]byte) io.Reader{whole, oneByte} {
			got := runDot(copyDot, reader(msg[:cut]), 16, -1)
			if !strings.HasPrefix(got.rerr, "unexpected EOF") {
				t.Fatalf("cut at %d: %+v, want an unexpected EOF", cut, got)
			}
			sameAsRef(t, fmt.Sprintf("cut at %d", cut), msg[:cut], reader, 16, -1)
		}
	}
	endless := io.LimitReader(&repeatReader{line: []byte(".x\r\n\r\n.\n")}, 1<<20)
	if got := runDot(copyDot, endless, 64, 100); got.werr != "disk full" || got.n != 100 || got.rerr == "" {
		t.Fatalf("body without end: %+v, want disk full after 100 octets, then unexpected EOF", got)
	}
}

// TestCopyDotTicksWhileDataFlows: tick is called before more than a
// buffer's worth of octets has been read since the last one, however the
// reads fall.
func TestCopyDotTicksWhileDataFlows(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	wire := benchBody(200<<10, true)
	for _, bufsize := range []int{16, 100, 4096} {
		src := &countingReader{r: &shortReader{src: bytes.NewReader(wire), rnd: rnd, max: 3 * bufsize}}
		ticks, worst := 0, 0
		tick := func() {
			ticks++
			worst = max(worst, src.n)
			src.n = 0
		}
		if _, werr, rerr := copyDot(bufio.NewReaderSize(src, bufsize), io.Discard, tick); werr != nil || rerr != nil {
			t.Fatal(werr, rerr)
		}
		if worst > bufsize || ticks < len(wire)/bufsize {
			t.Errorf("buffer %d: %d ticks, up to %d octets read between two", bufsize, ticks, worst)
		}
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzCopyDotSameAsLineByLine compares the two unstuffers on any wire
// octets, buffer size and way of reading.
func FuzzCopyDotSameAsLineByLine(f *testing.F) {
	for _, s := range []string{"", ".\r\n", "a\r\n..\r\n.\r\n+OK\r\n", "aaaaaaaaaaaaaaa\r\n.\r\n", "\r\n.\n.\r\n", string(nastyMessage()[:120])} {
		f.Add([]byte(s), uint8(0), uint8(0))
	}
	readers := []func([]byte) io.Reader{whole, oneByte, halfData}
	f.Fuzz(func(t *testing.T, wire []byte, size, how uint8) {
		sameAsRef(t, "fuzz", wire, readers[int(how)%len(readers)], 16+int(size)%64, -1)
	})
}
