//go:build linux

package queue

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"example.org/popspool/spooltest/measure"

	"github.com/rs/zerolog"

	"example.org/popspool/deliverd/smtpc"
)

// BenchmarkBacklog is issue 13.4's backlog: deliverd started with 1,000
// and with 100,000 files of 1 KiB waiting in pickup/, delivering over 4
// connections to go-smtp's in-process server (which discards), the real
// ledger fsynced. Each iteration delivers the first measure.BacklogMeasure files,
// then stops, and reports:
//
//	first-handoff-ms  from Run to the first delivery recorded (its 4001 line)
//	ms/msg            wall time per file over the first measure.BacklogMeasure, the first scan included
//	ms/msg-after-first  the same from the first handoff on: the cost of a file, the scan left out
//	cpu-µs/msg        user+sys CPU of the process (the SMTP server's share included) per file
//	peak-heap-MiB     highest HeapInuse sampled every 5 ms, minus the heap before Run
//	peak-RSS-MiB      VmHWM of the process, reset (clear_refs 5) after the files were made
//
//	go test -run '^$' -bench 'Backlog$' -benchtime 1x ./queue
func BenchmarkBacklog(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("waiting=%d", n), func(b *testing.B) { benchBacklog(b, n) })
	}
}

func benchBacklog(b *testing.B, waiting int) {
	addr := goSMTPDiscard(b)
	target, err := smtpc.ParseTarget("smtp://" + addr)
	if err != nil {
		b.Fatal(err)
	}
	msg := []byte("From: a@example.net\r\nSubject: backlog\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 15))
	for range b.N {
		b.StopTimer()
		q := newQueue(b, &SMTP{Target: target, Opt: smtpc.Options{StartTLS: smtpc.StartTLSNone, Helo: "bench.popspool.test"}})
		for range waiting {
			putMsg(b, q, "sender@example.net", msg, "alice@l")
		}
		lines := &measure.Handoffs{Event: []byte(`"event":4001`), StopAt: measure.BacklogMeasure(waiting)}
		q.Log = zerolog.New(lines)
		lines.Time(b, func(ctx context.Context) error { return q.Run(ctx, true) })
		q.Target.Close()
	}
}
