package service

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.org/popspool/shared/liveness"
	"example.org/popspool/shared/notify/notifytest"
)

// pings counts the WATCHDOG=1 datagrams received so far.
func pings(sock *notifytest.Socket) int {
	n := 0
	for _, m := range sock.Messages() {
		if strings.Contains(m, "WATCHDOG=1") {
			n++
		}
	}
	return n
}

// waitPings waits up to 3 s for more than n pings and returns the count.
func waitPings(t *testing.T, sock *notifytest.Socket, n int) int {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got := pings(sock); got > n {
			return got
		}
	}
	t.Fatalf("no watchdog ping after %d", n)
	return 0
}

// TestWatchdogFollowsTheWork: the pings go on while the daemon's work loop
// makes progress or is idle, stop while it hangs past its budget, and
// resume when it moves again (issue 11, item 4).
func TestWatchdogFollowsTheWork(t *testing.T) {
	sock := notifytest.Listen(t, "")
	t.Setenv("NOTIFY_SOCKET", sock.Path)
	t.Setenv("WATCHDOG_USEC", "100000") // ping every 50 ms
	t.Setenv("WATCHDOG_PID", "")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "popspool.toml")
	writeConfig(t, cfg, filepath.Join(dir, "spool"), "")
	old := ScanEvery
	ScanEvery = 50 * time.Millisecond
	t.Cleanup(func() { ScanEvery = old })

	mon := liveness.NewMonitor()
	const budget = 300 * time.Millisecond
	phase := make(chan string)
	run := func(ctx context.Context, env *Env) error {
		beat := mon.Register("test loop", budget)
		defer beat.Close()
		env.Ready()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		mode := "work"
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case mode = <-phase:
				if mode == "hang" {
					beat.Busy() // busy from now on, and never again a step
				}
			case <-t.C:
				switch mode {
				case "work":
					beat.Busy()
				case "idle":
					beat.Idle()
				}
			}
		}
	}
	log := &syncBuf{}
	env, err := load("rewrited", cfg, false, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	ctl := make(chan control, 1)
	sup := newSupervisor("rewrited", run, log, ctl)
	sup.beats = mon
	code := make(chan int, 1)
	go func() { code <- sup.serve(env) }()

	sock.Wait(t, "READY=1", 5*time.Second)
	n := waitPings(t, sock, 0)
	time.Sleep(2 * budget)
	waitPings(t, sock, n) // still working: pings go on past the budget

	phase <- "hang"
	log.wait(t, `"event":1028`)
	if !strings.Contains(log.String(), `"loop":"test loop"`) {
		t.Errorf("1028 does not name the loop:\n%s", log)
	}
	before := pings(sock)
	time.Sleep(4 * 50 * time.Millisecond) // four ping intervals
	if got := pings(sock); got != before {
		t.Fatalf("%d watchdog pings sent while the work loop hung", got-before)
	}

	phase <- "idle"
	waitPings(t, sock, before) // idle by choice counts as alive
	log.wait(t, `"event":1029`)

	ctl <- ctlStop
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d; log:\n%s", c, log)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not stop")
	}
}
