//go:build unix

package chaos

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"example.org/popspool/spooltest/faultproxy"
	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/smtpsink"
)

// stopBound is how long a daemon may take to finish the file in hand and
// exit after SIGTERM.
const stopBound = 15 * time.Second

// sigtermStop stops daemon d with SIGTERM, as a service manager does, and
// returns how long it took and what went wrong: no exit within stopBound
// (then SIGQUIT writes the goroutine stacks into its log before the
// SIGKILL), a non-zero exit, or a file in hand not finished: a delivery
// cut after its final dot (4006: the target may get it twice) or given up
// and deferred ("canceled"). The deliveries that lost their connection
// after the final dot (4006) come apart in afterDot: deliverd's doing if
// no network fault came meanwhile, the network's if one did.
func sigtermStop(f *harness.Flow, d, log string) (took time.Duration, problems, afterDot []string) {
	from := Size(log)
	t0 := time.Now()
	if err := f.Signal(d, syscall.SIGTERM); err != nil {
		return 0, []string{err.Error()}, nil
	}
	exited := harness.WaitFor(stopBound, func() bool { return f.Exited(d) })
	took = time.Since(t0)
	if !exited {
		f.Signal(d, syscall.SIGQUIT) // Go prints every goroutine's stack and exits
		if !harness.WaitFor(3*time.Second, func() bool { return f.Exited(d) }) {
			f.Kill(d)
		}
		problems = append(problems, fmt.Sprintf("%s did not exit within %v of SIGTERM; stacks (SIGQUIT) at the end of %s, in: %s",
			d, stopBound, log, strings.Join(frames(log, from), " | ")))
	} else if err := f.ExitErr(d); err != nil {
		problems = append(problems, fmt.Sprintf("%s exited with %v after SIGTERM", d, err))
	}
	cancelled := map[string]bool{}
	ScanLog(log, from, -1, func(l Line) {
		switch {
		case l.Event == 4006:
			afterDot = append(afterDot, fmt.Sprintf("%s cut the delivery of %s after its final dot at SIGTERM instead of finishing it: %s", d, l.ID, l.Error))
		case l.Event == 4002 && strings.Contains(l.Error, "canceled"):
			cancelled[l.ID] = true
		}
	})
	if len(cancelled) > 0 {
		problems = append(problems, fmt.Sprintf("%s gave up %d deliveries at SIGTERM (deferred, \"canceled\") instead of finishing the files in hand", d, len(cancelled)))
	}
	return took, problems, afterDot
}

// frames returns the project's functions named in a goroutine dump
// written into log after offset from.
func frames(log string, from int64) []string {
	var out []string
	seen := map[string]bool{}
	ScanLog(log, from, -1, func(l Line) {
		s := l.Raw
		if !strings.HasPrefix(s, "example.org/popspool/") || strings.Contains(s, "shared/service.") {
			return
		}
		if i := strings.LastIndexByte(s, '('); i > 0 {
			s = s[:i]
		}
		if !seen[s] && len(out) < 8 {
			seen[s] = true
			out = append(out, strings.TrimPrefix(s, "example.org/popspool/"))
		}
	})
	return out
}

// TestSIGTERMWhileWorking stops fetchd while it downloads over a slow
// link, and deliverd while it delivers over one, each with more work
// waiting: each must finish the file in hand and exit 0 within the bound,
// leave nothing for recovery (no event 1011 at the next start), and after
// the restart everything must arrive, none of it twice.
func TestSIGTERMWhileWorking(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	for _, d := range []string{"fetchd", "deliverd"} {
		t.Run(d, func(t *testing.T) { sigtermWhileWorking(t, d) })
	}
}

func sigtermWhileWorking(t *testing.T, d string) {
	sink, err := smtpsink.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	faults := NewFaults()
	faults.POP3Rate, faults.SMTPRate = 1<<20, 2<<20
	if d == "deliverd" {
		// Slower out than in, so that pickup/ fills up behind the
		// deliveries in hand: at 2 MB/s deliverd kept pickup/ empty
		// now and then, and the test found no moment to stop it in.
		faults.SMTPRate = 512 << 10
	}
	proxy := faultproxy.StartFilter(t, sink.Addr, faults.SMTPRule())
	f, err := harness.New(t.TempDir(), daemons(t), harness.Options{
		Target: "smtp://" + proxy.Addr,
		Via:    func(pop string) string { return faultproxy.Start(t, pop, faults.POP3Rule()).Addr },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	mail, err := harness.Generate(f.Box, 200, 6)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range harness.Daemons {
		if n == "deliverd" && d == "deliverd" {
			// deliverd claims up to 32 files at a time and, even at
			// this rate, kept pace with fetchd and rewrited in CI: the
			// test found pickup/ empty whenever deliverd had work in
			// hand. A backlog in pickup/ before it starts makes the
			// moment certain.
			if !harness.WaitFor(30*time.Second, func() bool { return f.SpoolFiles()["pickup"] >= 100 }) {
				t.Fatalf("pickup/ never held 100 files: spool %v", f.SpoolFiles())
			}
		}
		if err := f.Start(n); err != nil {
			t.Fatal(err)
		}
	}
	waiting := map[string]func() bool{
		"fetchd":   func() bool { return f.Server.Stats().Left > 20 },
		"deliverd": func() bool { return f.SpoolFiles()["pickup"] > 0 },
	}[d]
	busy := harness.WaitFor(30*time.Second, func() bool {
		return sink.Count() >= 10 && f.SpoolFiles()["tmp/"+d] > 0 && waiting()
	})
	if !busy {
		t.Fatalf("%s never had work in hand and more waiting: sink %d, spool %v", d, sink.Count(), f.SpoolFiles())
	}
	log := f.Logs + "/" + d + ".log"
	took, problems, afterDot := sigtermStop(f, d, log)
	problems = append(problems, afterDot...) // no network faults here
	t.Logf("SIGTERM to %s with %d delivered: stopped after %v", d, sink.Count(), took.Round(time.Millisecond))
	for _, p := range problems {
		t.Error(p)
	}
	restart := Size(log)
	if err := f.Start(d); err != nil {
		t.Fatal(err)
	}
	if !harness.WaitFor(60*time.Second, func() bool { return f.Settled() && f.SpoolFiles()["deferred"] == 0 }) {
		t.Fatalf("not settled: mailbox %d, spool %v", f.Server.Stats().Left, f.SpoolFiles())
	}
	ScanLog(log, restart, -1, func(l Line) {
		if l.Event == 1011 {
			t.Errorf("%s found unfinished work after the SIGTERM stop: %s", d, l.Raw)
		}
	})
	var want []Want
	for i, b := range mail {
		want = append(want, Want{Name: fmt.Sprintf("m%04d.eml", i), Wire: harness.Wire(b)})
	}
	res := Verify(Input{Account: f.Opt.Account, Want: want, Delivered: sink.Messages(), Spool: f.Spool, Logs: f.Logs})
	if res.Lost+res.Duplicated+res.Strange+res.Leftover > 0 {
		t.Errorf("after the restart: lost=%d duplicated=%d strange=%d leftover=%d", res.Lost, res.Duplicated, res.Strange, res.Leftover)
	}
}
