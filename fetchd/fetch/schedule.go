package fetch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// maxSessions bounds the POP3 connections open at once.
const maxSessions = 4

// Once polls every account once, up to maxSessions at a time, and returns
// an error naming the accounts that failed.
func (f *Fetcher) Once(ctx context.Context) error {
	sem := make(chan struct{}, maxSessions)
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
// interval). Creating control/retrieve-now polls every account at once.
func (f *Fetcher) Run(ctx context.Context) error {
	sem := make(chan struct{}, maxSessions)
	kicks := make([]chan struct{}, len(f.Cfg.Account))
	var wg sync.WaitGroup
	for i := range f.Cfg.Account {
		kicks[i] = make(chan struct{}, 1)
		wg.Add(1)
		go func(a *config.Account, kick chan struct{}) {
			defer wg.Done()
			f.loop(ctx, a, sem, kick)
		}(&f.Cfg.Account[i], kicks[i])
	}
	f.watchControl(ctx, kicks)
	wg.Wait()
	return nil
}

func (f *Fetcher) loop(ctx context.Context, a *config.Account, sem chan struct{}, kick chan struct{}) {
	failures := 0
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		_, err := f.Poll(ctx, a)
		<-sem
		if err != nil {
			failures++
		} else {
			failures = 0
		}
		t := time.NewTimer(wait(a.Interval.D(), failures))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// wait is the pause before the next poll: the interval, or after failures
// one minute doubling per failure, capped at an hour but never below the
// interval.
func wait(interval time.Duration, failures int) time.Duration {
	if failures == 0 {
		return interval
	}
	d := time.Minute << min(failures-1, 6)
	d = min(d, time.Hour)
	return max(d, interval)
}

// watchControl polls for control/retrieve-now (the "Retrieve Now" button)
// until ctx ends.
func (f *Fetcher) watchControl(ctx context.Context, kicks []chan struct{}) {
	path := filepath.Join(f.S.Dir(spool.Control), "retrieve-now")
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := os.Remove(path); err != nil {
			continue
		}
		event.Emit(&f.Log, event.RetrieveNow).Msg("polling every account now")
		for _, k := range kicks {
			select {
			case k <- struct{}{}:
			default:
			}
		}
	}
}
