package smtpc

import (
	"bufio"
	"bytes"
	"math/rand"
	"net/textproto"
	"testing"
)

// dotWriter is what net/textproto's DotWriter sends for body, the final
// dot included.
func dotWriter(body []byte) []byte {
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	w := textproto.NewWriter(bw).DotWriter()
	w.Write(body)
	w.Close()
	return out.Bytes()
}

// stuffed is what the stuffer and its ending send for body, written in
// chunks of the sizes rng picks, with the ending fed through a DotWriter
// as data does.
func stuffed(body []byte, rng *rand.Rand) []byte {
	s := stuffInChunks(body, rng)
	hold, feed := s.ending()
	var out bytes.Buffer
	out.Write(s.out[:len(s.out)-hold])
	bw := bufio.NewWriter(&out)
	w := textproto.NewWriter(bw).DotWriter()
	w.Write([]byte(feed))
	w.Close()
	return out.Bytes()
}

// ended is what the stuffer and its end send for body, as a pipelined
// transaction writes it.
func ended(body []byte, rng *rand.Rand) []byte {
	s := stuffInChunks(body, rng)
	s.end()
	return s.out
}

// stuffInChunks stuffs body in chunks of the sizes rng picks.
func stuffInChunks(body []byte, rng *rand.Rand) *stuffer {
	var s stuffer
	for b := body; len(b) > 0; {
		n := min(len(b), 1+rng.Intn(7))
		s.stuff(b[:n])
		b = b[n:]
	}
	return &s
}

// The stuffer sends what textproto's DotWriter sends, byte for byte, with
// the ending through a DotWriter or with its own end, for
// bodies made of dots, CRs, LFs and letters in every arrangement up to
// six bytes and in 20,000 random ones up to 200, cut into random chunks.
func TestStufferIsDotWriter(t *testing.T) {
	alphabet := []byte(".\r\nab")
	rng := rand.New(rand.NewSource(1))
	check := func(body []byte) {
		want := dotWriter(body)
		if got := stuffed(body, rng); !bytes.Equal(want, got) {
			t.Fatalf("body %q: DotWriter sends %q, the stuffer %q", body, want, got)
		}
		if got := ended(body, rng); !bytes.Equal(want, got) {
			t.Fatalf("body %q: DotWriter sends %q, the stuffer and its end %q", body, want, got)
		}
	}
	var all func(prefix []byte, n int)
	all = func(prefix []byte, n int) {
		check(prefix)
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			all(append(prefix[:len(prefix):len(prefix)], c), n-1)
		}
	}
	all(nil, 6)
	for range 20000 {
		body := make([]byte, rng.Intn(200))
		for i := range body {
			body[i] = alphabet[rng.Intn(len(alphabet))]
		}
		check(body)
	}
}
