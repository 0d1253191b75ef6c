package harness

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
)

// Generate writes n distinct messages into dir (as m0000.eml ...) with
// sizes from a few hundred bytes to about 200 KB, dot lines, long lines and
// 8-bit bytes, and returns their bytes. The same seed gives the same mail.
func Generate(dir string, n int, seed int64) ([][]byte, error) {
	rng := rand.New(rand.NewSource(seed))
	var out [][]byte
	for i := 0; i < n; i++ {
		b := message(rng, i, seed)
		tmp := filepath.Join(dir, fmt.Sprintf(".m%04d.tmp", i))
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, filepath.Join(dir, fmt.Sprintf("m%04d.eml", i))); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func message(rng *rand.Rand, i int, seed int64) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Sender %d <sender%d@isp.example>\r\nTo: office@isp.example\r\n", i, i%7)
	fmt.Fprintf(&b, "Subject: generated message %d of seed %d\r\nMessage-ID: <gen-%d-%d@isp.example>\r\n", i, seed, seed, i)
	fmt.Fprintf(&b, "Date: Mon, 23 Nov 2026 10:%02d:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", i%60)
	size := 200 << rng.Intn(10) // 200 B .. 100 KB, log-uniform
	size += rng.Intn(size)
	for b.Len() < size {
		switch rng.Intn(10) {
		case 0:
			b.WriteString(".\r\n")
		case 1:
			b.WriteString("..leading dots\r\n")
		case 2:
			b.WriteString(strings.Repeat("long line ", 50+rng.Intn(300)) + "\r\n")
		case 3:
			b.WriteString("8-bit: caf\xc3\xa9 \xe2\x82\xac\r\n")
		default:
			fmt.Fprintf(&b, "line %d of message %d: %x\r\n", b.Len(), i, rng.Int63())
		}
	}
	return []byte(b.String())
}
