package fetch

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/spool"
	"example.org/popspool/spooltest/dovecot"
	"example.org/popspool/spooltest/measure"
	"example.org/popspool/spooltest/pop3srv"
)

// Benchmarks: fetching whole mailboxes into a spool with every fsync the
// protocol needs, from the in-process pop3srv and from a real Dovecot.
//
//	go test -run '^$' -bench . -benchtime 3x ./fetch
//
// msgs/s and MB/s count message octets as the server stores them; setup
// (filling the mailbox, emptying incoming/) is not timed. cpu-µs/msg is
// this process's CPU (getrusage) per message fetched: fetchd's own from
// Dovecot, fetchd's and the in-process server's together from pop3srv.

// benchMessage returns a message of about size octets, CRLF lines of 78.
func benchMessage(i, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: bench@example.net\r\nTo: office@example.org\r\nSubject: bench %d\r\nMessage-ID: <%d@bench>\r\n\r\n", i, i)
	line := bytes.Repeat([]byte("x"), 76)
	for b.Len() < size {
		b.Write(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// emptyIncoming removes what the last iteration stored (rewrited would).
func emptyIncoming(b *testing.B, s *spool.Spool) {
	ents, _ := os.ReadDir(s.Dir(spool.Incoming))
	for _, e := range ents {
		os.Remove(filepath.Join(s.Dir(spool.Incoming), e.Name()))
	}
}

// benchWorkloads are the mailboxes the fetch benchmarks move: many small
// messages, and large ones whose cost is the copy.
var benchWorkloads = []struct{ n, size int }{{1000, 10 << 10}, {200, 1 << 20}, {20, 10 << 20}}

// cpuTimes is the process's user and system CPU time spent in timed polls.
type cpuTimes struct{ user, sys time.Duration }

// reportRate reports msgs/s and the CPU per message, user and system
// together (cpu-µs/msg) and user alone (user-µs/msg).
func reportRate(b *testing.B, msgs int, cpu cpuTimes) {
	n := float64(msgs * b.N)
	b.ReportMetric(n/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64((cpu.user+cpu.sys).Microseconds())/n, "cpu-µs/msg")
	b.ReportMetric(float64(cpu.user.Microseconds())/n, "user-µs/msg")
}

// timedPoll runs one poll of r that must fetch and delete n messages
// and adds the process's CPU time it took to cpu. The garbage of the
// set-up is collected and returned to the system first, so that the
// collector and the scavenger do not count against the poll.
func timedPoll(b *testing.B, r *rig, n int, cpu *cpuTimes) {
	debug.FreeOSMemory()
	b.StartTimer()
	user, sys := measure.Times()
	st, err := r.poll(b)
	user2, sys2 := measure.Times()
	b.StopTimer()
	cpu.user += user2 - user
	cpu.sys += sys2 - sys
	if err != nil || st.Fetched != n || st.Deleted != n {
		b.Fatalf("poll %+v %v", st, err)
	}
}

func BenchmarkFetchPop3srv(b *testing.B) {
	for _, c := range benchWorkloads {
		for _, pipe := range []bool{true, false} {
			name := fmt.Sprintf("%dx%dKiB/pipelining=%v", c.n, c.size>>10, pipe)
			b.Run(name, func(b *testing.B) { benchPop3srv(b, c.n, c.size, !pipe) })
		}
	}
}

func benchPop3srv(b *testing.B, n, size int, noPipe bool) {
	dir := b.TempDir()
	box := filepath.Join(dir, "box")
	os.Mkdir(box, 0o755)
	srv := &pop3srv.Server{Dir: box, User: "u", Pass: "p"}
	addr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	r := &rig{}
	r.setup(b, dir, configAccount(addr.String()), "p")
	r.cfg.Account[0].MaxSize = 1 << 30
	r.f.noPipelining = noPipe
	b.SetBytes(int64(n * size))
	b.ResetTimer()
	b.StopTimer()
	var cpu cpuTimes
	for i := 0; i < b.N; i++ {
		emptyIncoming(b, r.s)
		for j := 0; j < n; j++ {
			os.WriteFile(filepath.Join(box, fmt.Sprintf("%02d-%05d.eml", i%100, j)), benchMessage(j, size), 0o644)
		}
		timedPoll(b, r, n, &cpu)
	}
	reportRate(b, n, cpu)
}

// BenchmarkFetchDovecot is the same from a real Dovecot, over implicit
// TLS (tls) and in clear text on its plain port (plain).
func BenchmarkFetchDovecot(b *testing.B) {
	dc := dovecot.Start(b, map[string]string{dcUser: dcPass})
	for _, c := range benchWorkloads {
		for _, tls := range []bool{true, false} {
			for _, pipe := range []bool{true, false} {
				name := fmt.Sprintf("%dx%dKiB/%s/pipelining=%v", c.n, c.size>>10, map[bool]string{true: "tls", false: "plain"}[tls], pipe)
				b.Run(name, func(b *testing.B) { benchDovecot(b, dc, c.n, c.size, tls, !pipe) })
			}
		}
	}
}

func benchDovecot(b *testing.B, dc *dovecot.Dovecot, n, size int, tls, noPipe bool) {
	r := &rig{}
	a := config.Account{TLS: "implicit", Server: dc.TLSAddr, CAFile: dc.CAFile, Username: dcUser}
	if !tls {
		a = config.Account{TLS: "none", AllowPlaintext: true, Server: dc.Addr, Username: dcUser}
	}
	r.setup(b, b.TempDir(), a, dcPass)
	r.cfg.Account[0].MaxSize = 1 << 30
	r.f.noPipelining = noPipe
	b.SetBytes(int64(n * size))
	b.ResetTimer()
	b.StopTimer()
	var cpu cpuTimes
	for i := 0; i < b.N; i++ {
		emptyIncoming(b, r.s)
		for j := 0; j < n; j++ {
			dc.Put(b, dcUser, benchMessage(j, size))
		}
		timedPoll(b, r, n, &cpu)
	}
	reportRate(b, n, cpu)
}

// BenchmarkLargeMessage fetches one 50 MiB message per iteration and
// reports the bytes allocated per fetch (B/op, pop3srv's share included)
// and the peak heap seen while it ran: both stay far below the message
// size because the message is streamed from socket to file.
func BenchmarkLargeMessage(b *testing.B) {
	const size = 50 << 20
	dir := b.TempDir()
	box := filepath.Join(dir, "box")
	os.Mkdir(box, 0o755)
	srv := &pop3srv.Server{Dir: box, User: "u", Pass: "p"}
	addr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	r := &rig{}
	r.setup(b, dir, configAccount(addr.String()), "p")
	r.cfg.Account[0].MaxSize = 1 << 30
	var peak uint64
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		emptyIncoming(b, r.s)
		writeBig(b, filepath.Join(box, fmt.Sprintf("big-%d.eml", i)), size)
		runtime.GC()
		stop := watchHeap()
		b.StartTimer()
		st, err := r.poll(b)
		b.StopTimer()
		peak = max(peak, stop())
		if err != nil || st.Fetched != 1 {
			b.Fatalf("poll %+v %v", st, err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

// writeBig writes a message of size octets without holding it in memory.
func writeBig(b *testing.B, path string, size int) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	w.WriteString("From: bench@example.net\r\nSubject: big\r\n\r\n")
	line := append(bytes.Repeat([]byte("y"), 76), '\r', '\n')
	for n := 0; n < size; n += len(line) {
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
}

// watchHeap samples the live heap every 2 ms until the returned function
// is called, which returns the highest sample.
func watchHeap() func() uint64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(stop); wg.Wait(); return peak.Load() }
}
