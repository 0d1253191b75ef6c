//go:build linux

package worker

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"example.org/popspool/spooltest/measure"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/spool"
)

// BenchmarkBacklog is issue 13.4's backlog: rewrited started with 1,000
// and with 100,000 files of 1 KiB waiting in incoming/. Each iteration
// routes the first measure.BacklogMeasure files (every handoff fsynced), then
// stops, and reports:
//
//	first-handoff-ms  from Run to the first file's move into pickup/ committed (its 3001 line)
//	ms/msg            wall time per file over the first measure.BacklogMeasure, the first scan included
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

func benchBacklog(b *testing.B, waiting int) {
	msg := "X-Popspool-Account: office\r\nFrom: a@example.net\r\nSubject: backlog\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 15)
	for range b.N {
		b.StopTimer()
		w := setup(b, "office")
		for range waiting {
			drop(b, w, spool.NewID()+".eml", msg)
		}
		lines := &measure.Handoffs{Event: []byte(`"event":3001`), StopAt: measure.BacklogMeasure(waiting)}
		w.Log = zerolog.New(lines)
		lines.Time(b, func(ctx context.Context) error { return w.Run(ctx, true) })
	}
}
