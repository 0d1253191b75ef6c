package pop3

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"
)

// benchBody is a message of about size octets in CRLF lines of 78, every
// sixteenth starting with a dot, as it goes on the wire (stuffed and
// terminated).
func benchBody(size int) []byte {
	var msg bytes.Buffer
	msg.WriteString("From: bench@example.net\r\nSubject: dots\r\n\r\n")
	for i := 0; msg.Len() < size; i++ {
		if i%16 == 0 {
			msg.WriteByte('.')
		} else {
			msg.WriteByte('x')
		}
		msg.Write(bytes.Repeat([]byte("x"), 75))
		msg.WriteString("\r\n")
	}
	return stuff(msg.Bytes())
}

// BenchmarkCopyDot unstuffs a body from memory into io.Discard: the
// unstuffer's own cost, with a reader of the Client's buffer size.
func BenchmarkCopyDot(b *testing.B) {
	for _, size := range []int{10 << 10, 1 << 20} {
		wire := benchBody(size)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			src := bytes.NewReader(wire)
			r := bufio.NewReaderSize(src, bufSize)
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(wire)
				r.Reset(src)
				if _, werr, rerr := copyDot(r, io.Discard, func() {}); werr != nil || rerr != nil {
					b.Fatal(werr, rerr)
				}
			}
		})
	}
}
