package fetch

import (
	"context"
	"strings"
	"testing"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/liveness"
)

// stalled reports whether the process's monitor holds a stalled loop
// named name, polling up to within for want.
func stalledIs(name string, want bool, within time.Duration) bool {
	for deadline := time.Now().Add(within); ; time.Sleep(10 * time.Millisecond) {
		got := false
		for _, s := range liveness.Default.Stalled() {
			got = got || s.Loop == name
		}
		if got == want || time.Now().After(deadline) {
			return got
		}
	}
}

// TestHungSessionStallsTheAccountLoop: a server that stops answering in
// the middle of RETR leaves the account's loop busy without progress,
// which the supervisor sees (and stops the watchdog pings); once the
// session has failed, the loop waiting for its next poll is idle by
// choice (issue 11, item 4).
func TestHungSessionStallsTheAccountLoop(t *testing.T) {
	r, p := newFakeRig(t, fakeMessage("u1", "one"))
	p.hook = func(_ int, cmd string) (string, hookAction) {
		if strings.HasPrefix(cmd, "RETR") {
			return "+OK\r\nSubject: half\r\n", hookStall
		}
		return "", hookPass
	}
	r.cfg.Account[0].Timeout = config.Duration(1500 * time.Millisecond)
	r.reopen(t)
	r.f.stallBudget = 300 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.f.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	const loop = "fetchd account office"
	if !stalledIs(loop, true, 1400*time.Millisecond) {
		t.Fatal("a session waiting past its budget for the rest of a message was not seen as stalled")
	}
	if stalledIs(loop, false, 3*time.Second) {
		t.Fatal("the loop waiting for its next poll after the failed session is still seen as stalled")
	}
}
