//go:build linux

package fetch

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"example.org/popspool/spooltest/measure"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/spool"
	"example.org/popspool/spooltest/pop3srv"
)

// BenchmarkThousandAccounts is the scale proof of issue 13.4: 1,000
// accounts on one fetchd, interval 1m, each against its own pop3srv on
// loopback: 950 empty, 50 with 5 messages of 10 KiB each round, one
// server that hangs after its greeting and one that refuses the password.
// One iteration is one round (Once). It asserts what must hold (never
// more sessions open than [fetch] sessions, every account polled, every
// message fetched once) and reports:
//
//	s/round        one round, the hanging account's time-out included
//	s/round-others until the last of the other 999 sessions ended
//	cpu-µs/poll    user+sys CPU of the process per account polled (the fd sampling's own taken off)
//	peak-RSS-MiB   VmHWM of the process
//	peak-fds       open fds sampled every 20 ms, minus those open before the round
//	peak-sessions  most POP3 sessions open at once, counted by the servers
//
// The servers run in the same process: CPU, RSS and fds include their
// share, so the figures are upper bounds for fetchd.
//
//	go test -run '^$' -bench 'ThousandAccounts$' -benchtime 3x ./fetch
func BenchmarkThousandAccounts(b *testing.B) {
	for _, sessions := range []int{config.DefaultSessions, 32} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) { benchAccounts(b, sessions) })
	}
}

const (
	scaleAccounts = 1000
	scaleWithMail = 50
	scaleMessages = 5
	scaleTimeout  = 5 * time.Second
)

type scaleRig struct {
	rig
	servers []*pop3srv.Server // one per account; nil for the hanging one
	boxes   []string
	open    atomic.Int64 // sessions open now, over all servers
	peak    atomic.Int64
	hung    atomic.Int64 // connections the hanging server took
	mu      sync.Mutex
	lastEnd time.Time // the last session of a pop3srv to end
}

func (r *scaleRig) session(delta int) {
	r.count(delta)
	if delta < 0 {
		r.mu.Lock()
		r.lastEnd = time.Now()
		r.mu.Unlock()
	}
}

// count keeps the sessions open now and the most at once.
func (r *scaleRig) count(delta int) {
	n := r.open.Add(int64(delta))
	for {
		p := r.peak.Load()
		if n <= p || r.peak.CompareAndSwap(p, n) {
			break
		}
	}
}

// hangAfterGreeting accepts connections, greets, and then reads and
// answers nothing until the client hangs up.
func (r *scaleRig) hangAfterGreeting(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.hung.Add(1)
			r.count(+1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.WriteString(c, "+OK ready\r\n")
				c.SetDeadline(time.Now().Add(time.Minute))
				io.Copy(io.Discard, c)
				r.count(-1)
			}()
		}
	}()
	return ln.Addr().String()
}

func newScaleRig(b *testing.B, sessions int) *scaleRig {
	dir := b.TempDir()
	r := &scaleRig{}
	r.setup(b, dir, configAccount("127.0.0.1:1"), "p")
	tmpl := r.cfg.Account[0]
	tmpl.Interval = config.Duration(time.Minute)
	tmpl.Timeout = config.Duration(scaleTimeout)
	r.cfg.Account = nil
	r.cfg.Fetch.Sessions = sessions
	for i := range scaleAccounts {
		a := tmpl
		a.Name = fmt.Sprintf("acct%04d", i)
		var srv *pop3srv.Server
		if i == scaleAccounts-1 {
			a.Server = r.hangAfterGreeting(b)
		} else {
			box := filepath.Join(dir, "box", a.Name)
			os.MkdirAll(box, 0o755)
			pass := "p"
			if i == scaleAccounts-2 {
				pass = "not-what-fetchd-sends"
			}
			srv = &pop3srv.Server{Dir: box, User: "u", Pass: pass, OnSession: r.session, Timeout: time.Minute}
			addr, err := srv.Start("127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { srv.Close() })
			a.Server = addr.String()
			r.boxes = append(r.boxes, box)
		}
		r.servers = append(r.servers, srv)
		r.cfg.Account = append(r.cfg.Account, a)
	}
	r.reopen(b)
	return r
}

func (r *scaleRig) fill(round int) {
	for i := range scaleWithMail {
		box := r.boxes[i*(scaleAccounts/scaleWithMail)]
		for j := range scaleMessages {
			os.WriteFile(filepath.Join(box, fmt.Sprintf("%03d-%d.eml", round, j)), benchMessage(j, 10<<10), 0o644)
		}
	}
}

// rusageThread is Linux's RUSAGE_THREAD: the calling thread only.
const rusageThread = 1

// cpuTime returns the user+sys CPU time of the process (who =
// RUSAGE_SELF) or of the calling thread (rusageThread).
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func openFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// watchFDs samples the open fds every 20 ms until the returned function
// is called, which returns the highest sample and the CPU time the
// sampling took (reading /proc/self/fd with the servers' thousand
// listeners is not free; it runs on a thread of its own to be measured).
func watchFDs() func() (int, time.Duration) {
	var peak atomic.Int64
	var used time.Duration
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		c0 := cpuTime(rusageThread)
		defer func() { used = cpuTime(rusageThread) - c0 }()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if n := int64(openFDs()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() (int, time.Duration) { close(stop); wg.Wait(); return int(peak.Load()), used }
}

func benchAccounts(b *testing.B, sessions int) {
	r := newScaleRig(b, sessions)
	var round, others time.Duration
	var cpu time.Duration
	peakFDs := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		emptyIncoming(b, r.s)
		r.fill(i)
		base := openFDs()
		b.StartTimer()
		fds := watchFDs()
		c0, t0 := cpuTime(syscall.RUSAGE_SELF), time.Now()
		err := r.f.Once(context.Background())
		round += time.Since(t0)
		peak, sampling := fds()
		cpu += cpuTime(syscall.RUSAGE_SELF) - c0 - sampling
		peakFDs = max(peakFDs, peak-base)
		r.mu.Lock()
		others += r.lastEnd.Sub(t0)
		r.mu.Unlock()
		b.StopTimer()
		r.checkRound(b, i, err)
		b.StartTimer()
	}
	b.StopTimer()
	if p := r.peak.Load(); p > int64(sessions) {
		b.Fatalf("%d sessions open at once, more than sessions = %d", p, sessions)
	}
	n := float64(b.N)
	b.ReportMetric(round.Seconds()/n, "s/round")
	b.ReportMetric(others.Seconds()/n, "s/round-others")
	b.ReportMetric(float64(cpu.Microseconds())/n/scaleAccounts, "cpu-µs/poll")
	b.ReportMetric(float64(measure.VmHWM(0))/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(peakFDs), "peak-fds")
	b.ReportMetric(float64(r.peak.Load()), "peak-sessions")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d accounts, sessions = %d, %d rounds: %.2f s a round (%.2f s without the hanging account's %s time-out), %.0f µs CPU a poll, peak RSS %.0f MiB, %d fds over the baseline at peak, at most %d sessions at once",
		scaleAccounts, sessions, b.N, round.Seconds()/n, others.Seconds()/n, scaleTimeout, float64(cpu.Microseconds())/n/scaleAccounts,
		float64(measure.VmHWM(0))/(1<<20), peakFDs, r.peak.Load())
}

// checkRound asserts that round i polled every account: each pop3srv had
// i+1 sessions (the refusing one at least one: its breaker may stop it),
// the hanging server was connected to, the mail is in incoming/, and Once
// names exactly the two bad accounts.
func (r *scaleRig) checkRound(b *testing.B, i int, err error) {
	for k, srv := range r.servers {
		switch {
		case srv == nil:
			if r.hung.Load() < 1 {
				b.Fatal("the hanging server was never connected to")
			}
		case k == scaleAccounts-2:
			if srv.Stats().Sessions < 1 {
				b.Fatal("the refusing server was never connected to")
			}
		case srv.Stats().Sessions != i+1:
			b.Fatalf("round %d: account %d had %d sessions, want %d: it starved", i, k, srv.Stats().Sessions, i+1)
		}
	}
	ents, _ := os.ReadDir(r.s.Dir(spool.Incoming))
	if len(ents) != scaleWithMail*scaleMessages {
		b.Fatalf("round %d: %d messages in incoming/, want %d", i, len(ents), scaleWithMail*scaleMessages)
	}
	want := fmt.Sprintf("[%s %s]", r.cfg.Account[scaleAccounts-2].Name, r.cfg.Account[scaleAccounts-1].Name)
	if err == nil || !strings.Contains(err.Error(), "acct0998") || !strings.Contains(err.Error(), "acct0999") {
		b.Fatalf("round %d: Once: %v, want the failed accounts %s", i, err, want)
	}
}

// BenchmarkThousandAccountsRun is the same rig under Run for 70 s, a
// minute's interval and the start of the next: every account must be
// polled at least once, the good ones twice (at the start and a minute
// later), and no more than sessions open at once. It reports the polls
// made, CPU per poll and the peaks, over the whole 70 s.
//
//	go test -run '^$' -bench ThousandAccountsRun -benchtime 1x ./fetch
func BenchmarkThousandAccountsRun(b *testing.B) {
	r := newScaleRig(b, config.DefaultSessions)
	r.fill(0)
	base := openFDs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fds := watchFDs()
		c0 := cpuTime(syscall.RUSAGE_SELF)
		ctx, cancel := context.WithCancel(context.Background()) // as a stop: Run returns nil
		stop := time.AfterFunc(70*time.Second, cancel)
		err := r.f.Run(ctx)
		stop.Stop()
		cancel()
		peak, sampling := fds()
		cpu := cpuTime(syscall.RUSAGE_SELF) - c0 - sampling
		if err != nil {
			b.Fatal(err)
		}
		polls := int(r.hung.Load())
		for k, srv := range r.servers {
			if srv == nil {
				continue
			}
			n := srv.Stats().Sessions
			polls += n
			if n < 1 || (k != scaleAccounts-2 && n < 2*(i+1)) {
				b.Fatalf("account %d had %d sessions in %d minutes of Run: it starved", k, n, i+1)
			}
		}
		if p := r.peak.Load(); p > config.DefaultSessions {
			b.Fatalf("%d sessions open at once, more than %d", p, config.DefaultSessions)
		}
		b.ReportMetric(float64(polls), "polls")
		b.ReportMetric(float64(cpu.Microseconds())/float64(polls), "cpu-µs/poll")
		b.ReportMetric(float64(measure.VmHWM(0))/(1<<20), "peak-RSS-MiB")
		b.ReportMetric(float64(peak-base), "peak-fds")
		b.ReportMetric(float64(r.peak.Load()), "peak-sessions")
		b.Logf("Run, 1,000 accounts, interval 1m, 70 s: %d polls, %.0f µs CPU a poll (%.2f s in all), peak RSS %.0f MiB, %d fds over the baseline at peak, at most %d sessions at once",
			polls, float64(cpu.Microseconds())/float64(polls), cpu.Seconds(), float64(measure.VmHWM(0))/(1<<20), peak-base, r.peak.Load())
	}
}
