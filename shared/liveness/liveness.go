// Package liveness tells whether a daemon's work loops still make
// progress, so that the service supervisor pings systemd's watchdog only
// for a daemon that works (issue 11, item 4). A loop is either idle by
// choice (waiting for work or for its next poll) or busy; a busy loop
// marks each step of progress (a file taken, a reply read, bytes written).
// A loop busy for longer than its budget without a mark is stalled: a hung
// filter, a session past its deadlines, a deadlock.
//
// Loops register in one process-wide monitor; marking is an atomic store,
// cheap enough for every read of a network connection.
package liveness

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// A Loop is one work loop of the daemon.
type Loop struct {
	name   string
	budget time.Duration
	m      *Monitor
	// since is the time of the last mark in Unix nanoseconds while busy,
	// 0 while idle.
	since atomic.Int64
}

// Monitor holds the loops of a process.
type Monitor struct {
	mu    sync.Mutex
	loops map[*Loop]struct{}
	now   func() time.Time
}

// Default is the process's monitor, read by the service supervisor.
var Default = NewMonitor()

// NewMonitor returns an empty monitor (tests use their own).
func NewMonitor() *Monitor {
	return &Monitor{loops: map[*Loop]struct{}{}, now: time.Now}
}

// Register adds a loop, idle, to the default monitor. budget is the
// longest it may stay busy without a mark: the longest single step it
// takes legitimately (a configured time-out) plus a margin.
func Register(name string, budget time.Duration) *Loop { return Default.Register(name, budget) }

// Register adds a loop, idle, to m.
func (m *Monitor) Register(name string, budget time.Duration) *Loop {
	l := &Loop{name: name, budget: budget, m: m}
	m.mu.Lock()
	m.loops[l] = struct{}{}
	m.mu.Unlock()
	return l
}

// Busy marks progress: the loop works and has just taken a step. A nil
// Loop is a no-op, for code that runs outside a watched loop.
func (l *Loop) Busy() {
	if l != nil {
		l.since.Store(l.m.now().UnixNano())
	}
}

// Idle says the loop waits by choice; it is not watched until Busy.
func (l *Loop) Idle() {
	if l != nil {
		l.since.Store(0)
	}
}

// Close removes the loop from its monitor.
func (l *Loop) Close() {
	if l == nil {
		return
	}
	l.m.mu.Lock()
	delete(l.m.loops, l)
	l.m.mu.Unlock()
}

// A Stall is a loop busy past its budget.
type Stall struct {
	Loop   string
	Since  time.Time     // its last mark
	Budget time.Duration // what it was allowed
}

// Stalled lists the stalled loops, longest stalled first.
func (m *Monitor) Stalled() []Stall {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Stall
	for l := range m.loops {
		ns := l.since.Load()
		if ns == 0 {
			continue
		}
		if since := time.Unix(0, ns); now.Sub(since) > l.budget {
			out = append(out, Stall{Loop: l.name, Since: since, Budget: l.budget})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out
}

type ctxKey struct{}

// With returns ctx carrying l, for code deep in a unit of work (a
// protocol client) to mark progress without knowing the loop.
func With(ctx context.Context, l *Loop) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// From returns the loop ctx carries, or nil (whose methods are no-ops).
func From(ctx context.Context) *Loop {
	l, _ := ctx.Value(ctxKey{}).(*Loop)
	return l
}
