package pop3

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"
)

// benchBody is a message of about size octets in CRLF lines of 78, as it
// goes on the wire (stuffed and terminated). A text body has two full
// stops a line and every sixteenth line starts with a dot; an attachment
// (base64) has no dots.
func benchBody(size int, text bool) []byte {
	var msg bytes.Buffer
	msg.WriteString("From: bench@example.net\r\nSubject: dots\r\n\r\n")
	line := bytes.Repeat([]byte("QUJD"), 19)
	if text {
		line = []byte("The quick brown fox. Jumps over the lazy dog. And then it does it again!!!!")
	}
	for i := 0; msg.Len() < size; i++ {
		if text && i%16 == 0 {
			msg.WriteByte('.')
		}
		msg.Write(line)
		msg.WriteString("\r\n")
	}
	return stuff(msg.Bytes())
}

// BenchmarkCopyDot unstuffs a body from memory into io.Discard: the
// unstuffer's own cost, with a reader of the Client's buffer size, a window
// at a time (copyDot) and, for comparison, line by line (refCopyDot, the
// way it was done before). ticks/op counts the calls of tick, which in the
// Client reads the clock.
func BenchmarkCopyDot(b *testing.B) {
	for _, c := range []struct {
		size int
		text bool
	}{{10 << 10, true}, {1 << 20, true}, {1 << 20, false}} {
		wire := benchBody(c.size, c.text)
		for _, f := range []struct {
			name string
			fn   unstufferFunc
		}{{"window", copyDot}, {"line-by-line", refCopyDot}} {
			b.Run(fmt.Sprintf("%dKiB/%s/%s", c.size>>10, map[bool]string{true: "text", false: "base64"}[c.text], f.name), func(b *testing.B) {
				src := bytes.NewReader(wire)
				r := bufio.NewReaderSize(src, bufSize)
				ticks := 0
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				for b.Loop() {
					src.Reset(wire)
					r.Reset(src)
					if _, werr, rerr := f.fn(r, io.Discard, func() { ticks++ }); werr != nil || rerr != nil {
						b.Fatal(werr, rerr)
					}
				}
				b.ReportMetric(float64(ticks)/float64(b.N), "ticks/op")
			})
		}
	}
}
