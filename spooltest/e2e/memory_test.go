//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"example.org/popspool/spooltest/harness"
)

// BenchmarkPeakRSS200MB runs the three real daemons, one at a time with
// -once, on one 200 MB message and reports each process's peak resident
// memory (getrusage ru_maxrss): streaming keeps it far below the message.
func BenchmarkPeakRSS200MB(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("ru_maxrss is read on Linux")
	}
	for i := 0; i < b.N; i++ {
		f, err := harness.New(b.TempDir(), bins, harness.Options{MaxSize: "300MB"})
		if err != nil {
			b.Fatal(err)
		}
		writeBig(b, filepath.Join(f.Box, "big.eml"), 200<<20)
		for _, d := range harness.Daemons {
			start := time.Now()
			if err := f.Run(d, 5*time.Minute); err != nil {
				b.Fatalf("%s: %v", d, err)
			}
			rss := f.Usage(d).(*syscall.Rusage).Maxrss // KiB on Linux
			b.ReportMetric(float64(rss)/1024, d+"-peak-RSS-MB")
			b.ReportMetric(time.Since(start).Seconds(), d+"-s")
		}
		got, _ := f.Delivered()
		if len(got) != 1 {
			b.Fatalf("%d messages delivered", len(got))
		}
		f.Close()
	}
}

func writeBig(b *testing.B, path string, size int) {
	file, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer file.Close()
	fmt.Fprintf(file, "From: a@example.net\r\nTo: b@example.net\r\nSubject: 200 MB\r\n\r\n")
	line := strings.Repeat("0123456789", 100) + "\r\n"
	for n := 0; n < size; n += len(line) {
		file.WriteString(line)
	}
}
