package liveness

import (
	"context"
	"testing"
	"time"
)

func TestStalledOnlyWhenBusyPastBudget(t *testing.T) {
	m := NewMonitor()
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	a := m.Register("a", time.Minute)
	b := m.Register("b", 10*time.Second)
	if s := m.Stalled(); len(s) != 0 {
		t.Fatalf("idle loops stalled: %v", s)
	}
	a.Busy()
	b.Busy()
	now = now.Add(30 * time.Second)
	if s := m.Stalled(); len(s) != 1 || s[0].Loop != "b" || s[0].Budget != 10*time.Second {
		t.Fatalf("after 30 s busy: %v, want b only", s)
	}
	b.Busy() // a step of progress
	if s := m.Stalled(); len(s) != 0 {
		t.Fatalf("after a mark: %v", s)
	}
	now = now.Add(2 * time.Minute)
	if s := m.Stalled(); len(s) != 2 || s[0].Loop != "a" {
		t.Fatalf("both past budget: %v, want a (longest) first", s)
	}
	a.Idle()
	b.Close()
	if s := m.Stalled(); len(s) != 0 {
		t.Fatalf("idle and closed loops stalled: %v", s)
	}
}

func TestContextCarriesTheLoop(t *testing.T) {
	m := NewMonitor()
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	l := m.Register("l", time.Second)
	ctx := With(context.Background(), l)
	From(ctx).Busy()
	now = now.Add(2 * time.Second)
	if s := m.Stalled(); len(s) != 1 {
		t.Fatalf("mark through ctx not seen: %v", s)
	}
	From(context.Background()).Busy() // no loop: a no-op, not a panic
	var nilLoop *Loop
	nilLoop.Idle()
	nilLoop.Close()
}
