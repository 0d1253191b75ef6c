package worker

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"example.org/popspool/spooltest/measure"

	"example.org/popspool/shared/spool"
)

// BenchmarkRewrite10KB routes 10,000 messages of 10 KB from incoming/ to
// pickup/, every handoff durable, and reports messages per second and
// the CPU time (user + system) per message.
func BenchmarkRewrite10KB(b *testing.B) {
	line := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n"
	benchRewrite(b, 10000, strings.Repeat(line, 160))
}

// BenchmarkRewrite1MB is the same with 200 messages of 1 MiB: the body
// is copied in the kernel, so its CPU per message should be near the
// 10 KB one's plus the copy.
func BenchmarkRewrite1MB(b *testing.B) {
	benchRewrite(b, 200, strings.Repeat(strings.Repeat("x", 1022)+"\r\n", 1024))
}

func benchRewrite(b *testing.B, count int, body string) {
	msg := "X-Popspool-Account: office\r\nFrom: a@example.net\r\nSubject: bench\r\n\r\n" + body
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w := setup(b, "office")
		for j := 0; j < count; j++ {
			drop(b, w, fmt.Sprintf("%s.eml", spool.NewID()), msg)
		}
		syncDisk() // the files dropped are durable, as fetchd leaves them
		b.StartTimer()
		start, cpu := time.Now(), measure.CPU()
		if err := w.Run(context.Background(), true); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(count)/time.Since(start).Seconds(), "msgs/s")
		b.ReportMetric(float64((measure.CPU()-cpu).Microseconds())/float64(count), "cpu-µs/msg")
	}
}

// BenchmarkRewrite100MB routes one 100 MB message and reports the peak heap
// while doing it: the message is streamed, so the heap must stay small.
func BenchmarkRewrite100MB(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w := setup(b, "office")
		path := filepath.Join(w.S.Dir(spool.Incoming), spool.NewID()+".eml")
		writeBig(b, path, 100<<20)
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peak atomic.Uint64
		done := make(chan struct{})
		go measure.SamplePeak(&peak, done)
		b.StartTimer()
		if err := w.Run(context.Background(), true); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		close(done)
		b.ReportMetric(float64(peak.Load()-min(peak.Load(), base.HeapInuse))/(1<<20), "peak-heap-growth-MB")
		b.ReportMetric(100, "message-MB")
	}
}

func writeBig(b *testing.B, path string, size int) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	f.WriteString("X-Popspool-Account: office\r\nFrom: a@example.net\r\nSubject: big\r\n\r\n")
	line := strings.Repeat("x", 1022) + "\r\n"
	for n := 0; n < size; n += len(line) {
		f.WriteString(line)
	}
	f.Close()
	old := time.Now().Add(-time.Minute)
	os.Chtimes(path, old, old)
}
