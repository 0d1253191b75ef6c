// Package measure is what the benchmarks read of a process: CPU time,
// peak resident memory (VmHWM) and peak Go heap while a run goes on, and a
// log sink that counts one event's lines (a handoff each) and stops the
// run after enough of them.
package measure

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
)

// VmHWM is the peak resident set of process pid (0: this process) since
// its start or the last reset, in bytes; 0 if /proc cannot tell.
func VmHWM(pid int) int64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			return kb << 10
		}
	}
	return 0
}

// Run samples the Go heap every 5 ms from Start to Stop.
type Run struct {
	base     uint64
	peak     atomic.Uint64
	done     chan struct{}
	wg       sync.WaitGroup
	cpuStart time.Duration
}

// Result is what a Run saw: the process's CPU time, the heap's growth
// over its start, and VmHWM at the end.
type Result struct {
	CPU  time.Duration
	Heap uint64
	HWM  int64
}

// Start collects garbage, resets VmHWM to the current RSS and starts
// sampling.
func Start() *Run {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset VmHWM
	r := &Run{base: ms.HeapInuse, done: make(chan struct{}), cpuStart: CPU()}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		SamplePeak(&r.peak, r.done)
	}()
	return r
}

// Stop ends the sampling and returns the figures.
func (r *Run) Stop() Result {
	cpu := CPU() - r.cpuStart
	close(r.done)
	r.wg.Wait()
	return Result{CPU: cpu, Heap: r.peak.Load() - min(r.peak.Load(), r.base), HWM: VmHWM(0)}
}

// SamplePeak keeps the highest HeapInuse in peak, every 5 ms, until done
// is closed.
func SamplePeak(peak *atomic.Uint64, done chan struct{}) {
	var m runtime.MemStats
	for {
		runtime.ReadMemStats(&m)
		if m.HeapInuse > peak.Load() {
			peak.Store(m.HeapInuse)
		}
		select {
		case <-done:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Handoffs is a log writer that counts the lines holding Event (a
// handoff committed) and calls Stop after StopAt of them.
type Handoffs struct {
	Event  []byte
	StopAt int64
	Stop   func()
	Start  time.Time

	n           atomic.Int64
	mu          sync.Mutex
	first, last time.Duration
}

func (h *Handoffs) Write(p []byte) (int, error) {
	if !bytes.Contains(p, h.Event) {
		return len(p), nil
	}
	n := h.n.Add(1)
	h.mu.Lock()
	if n == 1 {
		h.first = time.Since(h.Start)
	}
	if n == h.StopAt {
		h.last = time.Since(h.Start)
		h.Stop()
	}
	h.mu.Unlock()
	return len(p), nil
}

// Report fails b if fewer than StopAt handoffs were seen, and reports
// the time to the first, the time per file with and without it, and r's
// CPU per file, peak heap and peak RSS.
func (h *Handoffs) Report(b *testing.B, r Result) {
	n := h.n.Load()
	if n < h.StopAt {
		b.Fatalf("%d handoffs, want %d", n, h.StopAt)
	}
	b.ReportMetric(float64(h.first.Microseconds())/1000, "first-handoff-ms")
	b.ReportMetric(float64(h.last.Microseconds())/1000/float64(h.StopAt), "ms/msg")
	b.ReportMetric(float64((h.last-h.first).Microseconds())/1000/float64(h.StopAt-1), "ms/msg-after-first")
	b.ReportMetric(float64(r.CPU.Microseconds())/float64(n), "cpu-µs/msg")
	b.ReportMetric(float64(r.Heap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(r.HWM)/(1<<20), "peak-RSS-MiB")
}

// Time runs one timed iteration of a backlog bench: run gets a context
// that h ends after StopAt handoffs (h.Stop is set to end it), b's timer
// runs from the start to run's return, and the figures are reported
// (Report).
func (h *Handoffs) Time(b *testing.B, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.Stop = cancel
	m := Start()
	b.StartTimer()
	h.Start = time.Now()
	err := run(ctx)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	h.Report(b, m.Stop())
}

// BacklogMeasure is how many handoffs an iteration of a backlog bench
// times: 1,000, or $POPSPOOL_BENCH_BACKLOG_MEASURE (at most the backlog;
// set it to 100000 to drain the whole backlog and see that the cost per
// file stays flat).
func BacklogMeasure(waiting int) int64 {
	n, err := strconv.Atoi(os.Getenv("POPSPOOL_BENCH_BACKLOG_MEASURE"))
	if err != nil || n <= 0 {
		n = 1000
	}
	return int64(min(n, waiting))
}
