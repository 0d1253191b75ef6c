package fetch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/liveness"
	"example.org/popspool/shared/spool"
)

// sessions is how many POP3 connections may be open at once: [fetch]
// sessions, or its default for a Config not read by config.Load.
func (f *Fetcher) sessions() int {
	if n := f.Cfg.Fetch.Sessions; n > 0 {
		return n
	}
	return config.DefaultSessions
}

// Once polls every account once, up to [fetch] sessions at a time, and
// returns an error naming the accounts that failed.
func (f *Fetcher) Once(ctx context.Context) error {
	sem := make(chan struct{}, f.sessions())
	var mu sync.Mutex
	var failed []string
	var wg sync.WaitGroup
	for i := range f.Cfg.Account {
		a := &f.Cfg.Account[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := f.Poll(ctx, a); err != nil {
				mu.Lock()
				failed = append(failed, a.Name)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		return fmt.Errorf("accounts that failed: %v", failed)
	}
	return nil
}

// Run polls each account on its interval until ctx ends. After a failure
// the account waits longer each time (up to an hour, never less than its
// interval); a server's LOGIN-DELAY (RFC 2449 §6.5) is a floor under every
// wait. Refused logins stop an account (circuit breaker, state.go).
// Creating control/retrieve-now polls every account at once. Run returns
// early, with the error, when the spool is in a state only recovery at
// start can mend (a failed fsync): the service manager restarts fetchd.
func (f *Fetcher) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, f.sessions())
	kicks := make([]chan struct{}, len(f.Cfg.Account))
	names := make([]string, len(f.Cfg.Account)) // read here: a loop may replace its account's settings
	var wg sync.WaitGroup
	for i := range f.Cfg.Account {
		kicks[i], names[i] = make(chan struct{}, 1), f.Cfg.Account[i].Name
		wg.Add(1)
		go func(a *config.Account, kick chan struct{}) {
			defer wg.Done()
			if err := f.loop(ctx, a, sem, kick); err != nil {
				cancel(err)
			}
		}(&f.Cfg.Account[i], kicks[i])
	}
	f.watchControl(ctx, names, kicks)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// loop polls one account until ctx ends; it returns an error only when
// fetchd must stop.
func (f *Fetcher) loop(ctx context.Context, a *config.Account, sem chan struct{}, kick chan struct{}) error {
	beat := liveness.Register("fetchd account "+a.Name, f.stallBudgetOf(a))
	defer beat.Close()
	failures := 0
	for {
		full := false
		if f.mayResume(a) {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			beat.Busy()
			_, err := f.Poll(liveness.With(ctx, beat), a)
			beat.Idle()
			<-sem
			switch {
			case kindOf(err) == failFatal:
				return err
			case spool.IsNoSpace(err):
				full = true // our disk, not the server: no back-off
			case kindOf(err) == failMessage:
				failures = 0 // counted against the message (failures.go), which goes last next time
			case err != nil:
				failures++
			default:
				failures = 0
			}
		}
		d := f.nextWait(a, failures)
		if full {
			d = max(min(a.Interval.D(), diskFullRetry), f.loginDelayLeft(a.Name))
		}
		ok, kicked := f.pause(ctx, a, d, kick)
		if !ok {
			return nil
		}
		if kicked {
			f.resumeNow(a)
			f.release(a.Name)
		}
	}
}

// stallBudgetOf is how long a session may go without a byte from the server
// (or a message written) before the watchdog pings stop: the account's
// time-out, which every read waits for at most, plus a minute for the
// spool's fsyncs.
func (f *Fetcher) stallBudgetOf(a *config.Account) time.Duration {
	if f.stallBudget > 0 {
		return f.stallBudget
	}
	return a.Timeout.D() + time.Minute
}

// diskFullRetry is the pause after a poll stopped by a full spool: the
// server did nothing wrong, so the account is tried again soon, not after
// the growing back-off of server failures.
const diskFullRetry = 15 * time.Second

// nextWait is the pause before the next poll of a: the interval, or the
// back-off after failures, and never less than what the server's
// LOGIN-DELAY still asks for.
func (f *Fetcher) nextWait(a *config.Account, failures int) time.Duration {
	if stopped, _ := f.Stopped(a.Name); stopped {
		return a.Interval.D() // the reminder's rhythm
	}
	d := wait(a.Interval.D(), failures, f.backoff)
	if failures > 0 {
		event.Emit(&f.Log, event.BackOff).Str("account", a.Name).Int("failures", failures).
			Str("next_poll_in", d.String()).Msg("polling this account less often until a poll succeeds")
	}
	return max(d, f.loginDelayLeft(a.Name))
}

// pause waits d, or until a retrieve-now kick; a kick that comes before
// the server's LOGIN-DELAY has passed waits for it. It returns false when
// ctx ended; kicked, that retrieve-now ended it.
func (f *Fetcher) pause(ctx context.Context, a *config.Account, d time.Duration, kick chan struct{}) (ok, kicked bool) {
	if ok, kicked = sleep(ctx, d, kick); !ok {
		return false, false
	}
	if left := f.loginDelayLeft(a.Name); left > 0 {
		event.Emit(&f.Log, event.LoginDelay).Str("account", a.Name).Str("wait", left.String()).
			Msg("retrieve-now waits for the server's LOGIN-DELAY")
		ok, _ = sleep(ctx, left, nil)
	}
	return ok, kicked
}

// sleep waits d, or until kick; ok false means ctx ended.
func sleep(ctx context.Context, d time.Duration, kick chan struct{}) (ok, kicked bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, false
	case <-kick:
		return true, true
	case <-t.C:
		return true, false
	}
}

// wait is the pause before the next poll: the interval, or after failures
// base (one minute) doubling per failure, capped at an hour but never
// below the interval.
func wait(interval time.Duration, failures int, base time.Duration) time.Duration {
	if failures == 0 {
		return interval
	}
	d := base << min(failures-1, 6)
	d = min(d, time.Hour)
	return max(d, interval)
}

// watchControl polls for control/retrieve-now (the "Retrieve Now" button:
// every account) and control/retrieve-now.<account> (that account only)
// until ctx ends.
func (f *Fetcher) watchControl(ctx context.Context, names []string, kicks []chan struct{}) {
	dir := f.S.Dir(spool.Control)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		global := filepath.Join(dir, "retrieve-now")
		content, _ := os.ReadFile(global)
		if os.Remove(global) == nil {
			all := strings.TrimSpace(string(content)) == "all"
			event.Emit(&f.Log, event.RetrieveNow).Bool("rearm_breakers", all).Msg("polling every account now")
			for i, k := range kicks {
				if all {
					f.rearm(names[i])
				}
				kickOne(k)
			}
		}
		for i, k := range kicks {
			name := names[i]
			if os.Remove(filepath.Join(dir, "retrieve-now."+name)) == nil {
				event.Emit(&f.Log, event.RetrieveNow).Str("account", name).Msg("polling this account now")
				f.rearm(name)
				kickOne(k)
			}
		}
	}
}

// rearm marks account name's breaker to be re-armed by its next
// retrieve-now (resumeNow).
func (f *Fetcher) rearm(name string) {
	st := f.state(name)
	st.mu.Lock()
	st.rearm = true
	st.mu.Unlock()
}

// kickOne wakes an account's loop unless a kick is already waiting.
func kickOne(k chan struct{}) {
	select {
	case k <- struct{}{}:
	default:
	}
}
