package fetch

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// manyAccounts gives the rig n accounts (a00, a01, ...) on server p and a
// new Fetcher for them.
func (r *rig) manyAccounts(t *testing.T, n int) {
	t.Helper()
	first := r.cfg.Account[0]
	r.cfg.Account = nil
	for i := range n {
		a := first
		a.Name = fmt.Sprintf("a%02d", i)
		r.cfg.Account = append(r.cfg.Account, a)
	}
	r.reopen(t)
}

// TestSessionsBoundConnections: with [fetch] sessions = 2, Once polls
// twelve accounts with never more than two POP3 connections open at once
// (counted by the server), and two at once at some point (the setting is
// used, not just a bound of one); every account is polled. Run is bound
// the same way.
func TestSessionsBoundConnections(t *testing.T) {
	r, p := newFakeRig(t)
	p.hook = func(_ int, cmd string) (string, hookAction) {
		if cmd == "STAT" || strings.HasPrefix(cmd, "LIST") {
			time.Sleep(20 * time.Millisecond) // sessions overlap
		}
		return "", hookPass
	}
	r.cfg.Fetch.Sessions = 2
	r.manyAccounts(t, 12)
	if err := r.f.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := p.peakConns(); got != 2 {
		t.Fatalf("Once: at most %d connections open at once, want 2 (sessions = 2)", got)
	}
	polled := map[string]bool{}
	for _, e := range r.log.events(event.FetchSession) {
		if e["ok"] == true {
			polled[e["account"].(string)] = true
		}
	}
	if len(polled) != 12 || len(p.loginTimes()) != 12 {
		t.Fatalf("Once polled %d accounts with %d logins, want 12", len(polled), len(p.loginTimes()))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.f.Run(ctx) }()
	for len(p.loginTimes()) < 24 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(p.loginTimes()) < 24 || p.peakConns() != 2 {
		t.Fatalf("Run: %d logins (want 24), at most %d connections at once (want 2)", len(p.loginTimes()), p.peakConns())
	}
}

// incomingCount returns how many messages are in incoming/.
func incomingCount(t *testing.T, r *rig) int {
	ents, err := os.ReadDir(r.s.Dir(spool.Incoming))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestMaxMessagesPerPoll: with max_messages = 3, seven messages take
// three polls (3, 3, 1), the first ones listed first; the ones past the
// limit stay on the server untouched (no DELE), each message lands once,
// and each cut poll says so (event 2046, at_limit in 2001).
func TestMaxMessagesPerPoll(t *testing.T) {
	var msgs []fakeMsg
	for i := range 7 {
		msgs = append(msgs, fakeMessage(fmt.Sprintf("u%d", i), fmt.Sprintf("m%d", i)))
	}
	r, p := newFakeRig(t, msgs...)
	r.cfg.Account[0].MaxMessages = 3
	wantLeft := [][]string{{"u3", "u4", "u5", "u6"}, {"u6"}, nil}
	for i, fetched := range []int{3, 3, 1} {
		st, err := r.poll(t)
		if err != nil {
			t.Fatal(err)
		}
		if st.Fetched != fetched || st.Deleted != fetched || !slices.Equal(p.left(), wantLeft[i]) {
			t.Fatalf("poll %d: %+v, server left %v; want %d fetched and deleted, %v left", i+1, st, p.left(), fetched, wantLeft[i])
		}
	}
	r.checkFake(t)
	if n := len(r.log.events(event.PollLimit)); n != 2 {
		t.Fatalf("%d events 2046, want 2 (the two cut polls):\n%s", n, r.log)
	}
	var flags []bool
	for _, e := range r.log.events(event.FetchSession) {
		flags = append(flags, e["at_limit"] == true)
	}
	if !slices.Equal(flags, []bool{true, true, false}) {
		t.Fatalf("at_limit of the polls %v, want [true true false]", flags)
	}
}

// TestMaxMessagesWithKeep: with keep = true the messages stay listed; the
// ones fetched before do not count against the limit, so each poll takes
// the next two and none is fetched twice (the journal forgets nothing
// still listed).
func TestMaxMessagesWithKeep(t *testing.T) {
	var msgs []fakeMsg
	for i := range 5 {
		msgs = append(msgs, fakeMessage(fmt.Sprintf("k%d", i), fmt.Sprintf("k%d", i)))
	}
	r, p := newFakeRig(t, msgs...)
	r.cfg.Account[0].Keep = true
	r.cfg.Account[0].MaxMessages = 2
	for i, fetched := range []int{2, 2, 1, 0} {
		st, err := r.poll(t)
		if err != nil {
			t.Fatal(err)
		}
		if st.Fetched != fetched || st.Deleted != 0 || len(p.left()) != 5 {
			t.Fatalf("poll %d: %+v, %d left on the server; want %d fetched, none deleted", i+1, st, len(p.left()), fetched)
		}
	}
	r.checkFake(t)
}

// TestMaxBytesPerPoll: max_bytes bounds the listed sizes a poll takes,
// but always admits the first message, so a message larger than the
// limit is fetched alone and nothing starves.
func TestMaxBytesPerPoll(t *testing.T) {
	small := func(uid string) fakeMsg { return fakeMessage(uid, uid) }
	big := fakeMsg{uid: "big", data: []byte("Subject: big\r\n\r\n" + strings.Repeat("y", 3000) + "\r\n")}
	r, p := newFakeRig(t, small("s0"), big, small("s1"), small("s2"))
	r.cfg.Account[0].MaxBytes = config.Size(2 * len(small("s0").data))
	// Poll 1: s0, then big does not fit. Poll 2: big alone (first of its
	// poll). Poll 3: s1 and s2 fit together.
	for i, fetched := range []int{1, 1, 2} {
		st, err := r.poll(t)
		if err != nil {
			t.Fatal(err)
		}
		if st.Fetched != fetched {
			t.Fatalf("poll %d: %+v, server left %v; want %d fetched", i+1, st, p.left(), fetched)
		}
	}
	if len(p.left()) != 0 {
		t.Fatalf("left on the server: %v", p.left())
	}
	r.checkFake(t)
	if n := len(r.log.events(event.PollLimit)); n != 2 {
		t.Fatalf("%d events 2046, want 2:\n%s", n, r.log)
	}
}

// checkFake asserts incoming/ holds each of the fake server's messages
// exactly once.
func (r *rig) checkFake(t *testing.T) {
	t.Helper()
	if n := incomingCount(t, r); n != len(r.want) {
		t.Fatalf("incoming/ holds %d messages, want %d", n, len(r.want))
	}
	r.check(t)
}

// TestDovecotMaxMessages: against a real Dovecot holding the 24 samples,
// max_messages = 10 empties the mailbox in three polls (10, 10, 4), each
// message landing once and the server keeping what a poll did not take.
func TestDovecotMaxMessages(t *testing.T) {
	r, dc := newDovecotRig(t, "implicit", dcPass)
	r.cfg.Account[0].MaxMessages = 10
	for i, fetched := range []int{10, 10, 4} {
		st, err := r.poll(t)
		if err != nil {
			t.Fatalf("poll %d: %v\n%s", i+1, err, r.log)
		}
		left := 24 - 10*(i+1)
		if st.Fetched != fetched || st.Deleted != fetched || dc.Count(t, dcUser) != max(left, 0) {
			t.Fatalf("poll %d: %+v, %d left in Dovecot; want %d fetched and deleted, %d left", i+1, st, dc.Count(t, dcUser), fetched, max(left, 0))
		}
	}
	r.check(t)
	if n := len(r.log.events(event.PollLimit)); n != 2 {
		t.Fatalf("%d events 2046, want 2", n)
	}
}
