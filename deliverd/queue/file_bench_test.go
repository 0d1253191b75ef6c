package queue

import (
	"io"
	"path/filepath"
	"testing"

	"example.org/popspool/shared/spool"
)

// BenchmarkReadMessage is the file work of one message outside the
// delivery: its envelope read and its 10 KB message read once to the
// end, as a target reads it, through readEnvelope and Msg.Open, then the
// file closed; one file read again and again (in the page cache):
//
//	go test -run '^$' -bench ReadMessage -benchmem ./queue
func BenchmarkReadMessage(b *testing.B) {
	q := newQueue(b, &scripted{})
	id := putMsg(b, q, "sender@example.net", tenKB(0), "alice@l", "bob@l")
	path := filepath.Join(q.S.Dir(spool.Pickup), id+".eml")
	b.ReportAllocs()
	for b.Loop() {
		_, msg, err := readEnvelope(path)
		if err != nil {
			b.Fatal(err)
		}
		r, err := msg.Open()
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != msg.Size {
			b.Fatalf("read %d of %d bytes: %v", n, msg.Size, err)
		}
		r.Close()
		msg.close()
	}
}
