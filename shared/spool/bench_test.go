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

// BenchmarkGroupHandoff is BenchmarkHandoff's group of 32 with the data
// made durable by one Group.Sync (syncfs on Linux) instead of an fsync
// per file.
func BenchmarkGroupHandoff(b *testing.B) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 640)
	s := openTest(b, "fetchd")
	start := time.Now()
	g, batch := s.NewGroup(), s.NewBatch()
	var parts []*Part
	flush := func() {
		if err := g.Sync(); err != nil {
			b.Fatal(err)
		}
		for _, p := range parts {
			if _, err := batch.Move(p.Name(), Incoming, p.ID); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
		parts = parts[:0]
	}
	for i := 0; i < b.N; i++ {
		p, err := g.Create(NewID())
		if err != nil {
			b.Fatal(err)
		}
		p.Write(body)
		if err := p.Close(); err != nil {
			b.Fatal(err)
		}
		parts = append(parts, p)
		if len(parts) == 32 {
			flush()
		}
	}
	flush()
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/handoff")
}
