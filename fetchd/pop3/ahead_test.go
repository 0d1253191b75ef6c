package pop3

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The replies to RETR 1 to MaxAhead are only sent once all those commands
// have arrived: a client that waited for the first reply before sending
// the next would stall here, and the bodies must still come back in
// order; past MaxAhead in flight nothing more is sent ahead.
func TestPrefetchSendsAheadAndReadsInOrder(t *testing.T) {
	steps := []step{greet, {c: "CAPA", s: "+OK\r\nPIPELINING\r\n.\r\n"}}
	var replies strings.Builder
	for n := 1; n <= MaxAhead; n++ {
		replies.WriteString(fmt.Sprintf("+OK\r\nmessage %d\r\n..dot\r\n.\r\n", n))
		steps = append(steps, step{c: fmt.Sprintf("RETR %d", n)})
	}
	steps[len(steps)-1].s = replies.String()
	next := MaxAhead + 1
	steps = append(steps, step{c: fmt.Sprintf("RETR %d", next), s: "+OK\r\nlast\r\n.\r\n"}, step{c: "QUIT", s: "+OK\r\n"})
	fs := serve(t, steps...)
	c := dial(t, fs, clearOpts())
	for n := 1; n <= MaxAhead; n++ {
		if ok, err := c.Prefetch(n); !ok || err != nil {
			t.Fatalf("Prefetch(%d) = %v, %v; want sent", n, ok, err)
		}
	}
	if ok, err := c.Prefetch(next); ok || err != nil {
		t.Fatalf("Prefetch(%d) with %d in flight = %v, %v; want not sent", next, MaxAhead, ok, err)
	}
	if !c.Ahead(1) || !c.Ahead(MaxAhead) || c.Ahead(next) {
		t.Fatalf("Ahead: 1 %v, %d %v, %d %v; want true, true, false", c.Ahead(1), MaxAhead, c.Ahead(MaxAhead), next, c.Ahead(next))
	}
	if _, err := c.Retr(2, &strings.Builder{}); err == nil || c.Err() != nil {
		t.Fatalf("Retr(2) before RETR 1 was read = %v (session %v); want a refusal that leaves the session usable", err, c.Err())
	}
	if err := c.Noop(); err == nil || !strings.Contains(err.Error(), "RETR 1") {
		t.Fatalf("NOOP with RETR 1 in flight = %v; want a refusal naming RETR 1", err)
	}
	for n := 1; n <= next; n++ {
		want := fmt.Sprintf("message %d\r\n.dot\r\n", n)
		if n == next {
			want = "last\r\n"
		}
		var b strings.Builder
		if _, err := c.Retr(n, &b); err != nil || b.String() != want {
			t.Fatalf("Retr(%d) = %q, %v; want %q", n, b.String(), err, want)
		}
		if c.Ahead(n) {
			t.Fatalf("message %d read is still in flight", n)
		}
	}
	if err := c.Quit(); err != nil {
		t.Errorf("Quit: %v", err)
	}
}

// An -ERR to a RETR sent ahead is that message's error; the one after it
// is read as usual.
func TestPrefetchErrIsThatMessages(t *testing.T) {
	fs := serve(t, greet,
		step{c: "CAPA", s: "+OK\r\nPIPELINING\r\n.\r\n"},
		step{c: "RETR 1"},
		step{c: "RETR 2", s: "-ERR [SYS/TEMP] cannot open\r\n+OK\r\ntwo\r\n.\r\n"},
		step{c: "QUIT", s: "+OK\r\n"},
	)
	c := dial(t, fs, clearOpts())
	for _, n := range []int{1, 2} {
		if _, err := c.Prefetch(n); err != nil {
			t.Fatal(err)
		}
	}
	var perr *Error
	if _, err := c.Retr(1, &strings.Builder{}); !errors.As(err, &perr) || perr.Cmd != "RETR 1" {
		t.Fatalf("Retr(1) = %v; want *Error for RETR 1", err)
	}
	var b strings.Builder
	if _, err := c.Retr(2, &b); err != nil || b.String() != "two\r\n" {
		t.Fatalf("Retr(2) = %q, %v", b.String(), err)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("Quit: %v", err)
	}
}

// Without PIPELINING in CAPA, or with NoPipelining, nothing is sent
// ahead and Retr sends its own command.
func TestPrefetchNeedsPipelining(t *testing.T) {
	for _, tc := range []struct {
		name, capa string
		opt        func(*Options)
	}{
		{"not offered", "+OK\r\nUIDL\r\n.\r\n", func(*Options) {}},
		{"turned off", "", func(o *Options) { o.NoPipelining = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := []step{greet}
			if tc.capa != "" {
				steps = append(steps, step{c: "CAPA", s: tc.capa})
			}
			steps = append(steps, step{c: "RETR 1", s: "+OK\r\none\r\n.\r\n"}, step{c: "QUIT", s: "+OK\r\n"})
			fs := serve(t, steps...)
			o := clearOpts()
			tc.opt(&o)
			c := dial(t, fs, o)
			if ok, err := c.Prefetch(1); ok || err != nil {
				t.Fatalf("Prefetch = %v, %v; want not sent", ok, err)
			}
			var b strings.Builder
			if _, err := c.Retr(1, &b); err != nil || b.String() != "one\r\n" {
				t.Fatalf("Retr(1) = %q, %v", b.String(), err)
			}
			if err := c.Quit(); err != nil {
				t.Errorf("Quit: %v", err)
			}
		})
	}
}
