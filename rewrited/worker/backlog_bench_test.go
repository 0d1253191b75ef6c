//go:build linux

package worker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/spool"
)

// BenchmarkBacklog is issue 13.4's backlog: rewrited started with 1,000
// and with 100,000 files of 1 KiB waiting in incoming/. Each iteration
// routes the first backlogMeasure() files (every handoff fsynced), then
// stops, and reports:
//
//	first-handoff-ms  from Run to the first file's move into pickup/ committed (its 3001 line)
//	ms/msg            wall time per file over the first backlogMeasure(), the first scan included
//	ms/msg-after-first  the same from the first handoff on: the cost of a file, the scan left out
//	cpu-µs/msg        user+sys CPU of the process per file, the same span
//	peak-heap-MiB     highest HeapInuse sampled every 5 ms, minus the heap before Run
//	peak-RSS-MiB      VmHWM of the process, reset (clear_refs 5) after the files were made
//
//	go test -run '^$' -bench 'Backlog$' -benchtime 1x ./worker
func BenchmarkBacklog(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("waiting=%d", n), func(b *testing.B) { benchBacklog(b, n) })
	}
}

// backlogMeasure is how many files each iteration routes: 1,000, or
// $POPSPOOL_BENCH_BACKLOG_MEASURE (at most the backlog; set it to 100000
// to drain the whole backlog and see that the cost per file stays flat).
func backlogMeasure(waiting int) int64 {
	n, err := strconv.Atoi(os.Getenv("POPSPOOL_BENCH_BACKLOG_MEASURE"))
	if err != nil || n <= 0 {
		n = 1000
	}
	return int64(min(n, waiting))
}

func benchBacklog(b *testing.B, waiting int) {
	msg := "X-Popspool-Account: office\r\nFrom: a@example.net\r\nSubject: backlog\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 15)
	for range b.N {
		b.StopTimer()
		w := setup(b, "office")
		for range waiting {
			drop(b, w, spool.NewID()+".eml", msg)
		}
		ctx, cancel := context.WithCancel(context.Background())
		lines := &handoffs{event: []byte(`"event":3001`), stopAt: backlogMeasure(waiting), stop: cancel}
		w.Log = zerolog.New(lines)
		m := startMeasure()
		b.StartTimer()
		lines.start = time.Now()
		if err := w.Run(ctx, true); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cancel()
		lines.report(b, m.stop())
	}
}

// handoffs counts the log lines of one event (a handoff committed) and
// stops the run after stopAt of them.
type handoffs struct {
	event  []byte
	stopAt int64
	stop   func()
	start  time.Time
	n      atomic.Int64
	mu     sync.Mutex
	first  time.Duration
	last   time.Duration
}

func (h *handoffs) Write(p []byte) (int, error) {
	if !bytes.Contains(p, h.event) {
		return len(p), nil
	}
	n := h.n.Add(1)
	h.mu.Lock()
	if n == 1 {
		h.first = time.Since(h.start)
	}
	if n == h.stopAt {
		h.last = time.Since(h.start)
		h.stop()
	}
	h.mu.Unlock()
	return len(p), nil
}

func (h *handoffs) report(b *testing.B, m measured) {
	n := h.n.Load()
	if n < h.stopAt {
		b.Fatalf("%d handoffs, want %d", n, h.stopAt)
	}
	b.ReportMetric(float64(h.first.Microseconds())/1000, "first-handoff-ms")
	b.ReportMetric(float64(h.last.Microseconds())/1000/float64(h.stopAt), "ms/msg")
	b.ReportMetric(float64((h.last-h.first).Microseconds())/1000/float64(h.stopAt-1), "ms/msg-after-first")
	b.ReportMetric(float64(m.cpu.Microseconds())/float64(n), "cpu-µs/msg")
	b.ReportMetric(float64(m.heap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(m.hwm)/(1<<20), "peak-RSS-MiB")
}

// measure samples the heap while a run goes on.
type measure struct {
	base     uint64
	peak     atomic.Uint64
	done     chan struct{}
	wg       sync.WaitGroup
	cpuStart time.Duration
}

type measured struct {
	cpu  time.Duration
	heap uint64
	hwm  int64
}

func startMeasure() *measure {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM to the current RSS
	m := &measure{base: ms.HeapInuse, done: make(chan struct{}), cpuStart: cpuTime()}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		samplePeak(&m.peak, m.done)
	}()
	return m
}

func (m *measure) stop() measured {
	cpu := cpuTime() - m.cpuStart
	close(m.done)
	m.wg.Wait()
	return measured{cpu: cpu, heap: m.peak.Load() - min(m.peak.Load(), m.base), hwm: vmHWM()}
}

// vmHWM is the process's peak resident set since the last reset, in bytes.
func vmHWM() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			return kb << 10
		}
	}
	return 0
}
