package spool

import (
	"bytes"
	"testing"
	"time"
)

// BenchmarkHandoff measures one handoff of a 10 KB file: create in tmp/,
// write, fsync, rename into incoming/, and the folder fsyncs, with a
// commit per file and with 32 files per commit (group commit).
func BenchmarkHandoff(b *testing.B) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 640)
	for _, group := range []int{1, 32} {
		name := "commit-per-file"
		if group > 1 {
			name = "group-of-32"
		}
		b.Run(name, func(b *testing.B) {
			s := openTest(b, "fetchd")
			start := time.Now()
			batch := s.NewBatch()
			for i := 0; i < b.N; i++ {
				p, err := s.Create(NewID())
				if err != nil {
					b.Fatal(err)
				}
				p.Write(body)
				if err := p.Seal(); err != nil {
					b.Fatal(err)
				}
				if _, err := batch.Move(p.Name(), Incoming, p.ID); err != nil {
					b.Fatal(err)
				}
				if (i+1)%group == 0 {
					if err := batch.Commit(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := batch.Commit(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/handoff")
		})
	}
}
