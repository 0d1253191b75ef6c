package fetch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"example.org/popspool/fetchd/pop3"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
)

// commandLog records the commands a fakePOP receives, in order.
type commandLog struct {
	mu   sync.Mutex
	cmds []string
}

func (l *commandLog) hook(before func(cmd string)) func(int, string) (string, hookAction) {
	return func(_ int, cmd string) (string, hookAction) {
		l.mu.Lock()
		l.cmds = append(l.cmds, cmd)
		l.mu.Unlock()
		if before != nil {
			before(cmd)
		}
		return "", hookPass
	}
}

// verbs returns the commands received that start with one of prefixes.
func (l *commandLog) verbs(prefixes ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, c := range l.cmds {
		for _, p := range prefixes {
			if strings.HasPrefix(c, p) {
				out = append(out, c)
			}
		}
	}
	return out
}

// lineAt is the index of the first of lines that starts with prefix, or -1.
func lineAt(lines []string, prefix string) int {
	return slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, prefix) })
}

func fakeMessages(n int) []fakeMsg {
	var msgs []fakeMsg
	for i := range n {
		msgs = append(msgs, fakeMessage(fmt.Sprintf("u%d", i), fmt.Sprintf("m%d", i)))
	}
	return msgs
}

// TestRetrSentAhead: with PIPELINING each RETR after the first goes out
// before the reply to the one before it has been read (the transcript
// shows "C RETR k+1" before "[RETR k body]"), but not sooner (RETR k+2
// after it), across batch boundaries
// (40 messages, batches of 32), and the DELEs of the whole session go
// out after the last message, before QUIT: all 40 land once and are
// deleted.
func TestRetrSentAhead(t *testing.T) {
	const n = 40
	r, p := newFakeRig(t, fakeMessages(n)...)
	log, err := event.NewLogger(r.log, "fetchd", "trace", "json")
	if err != nil {
		t.Fatal(err)
	}
	r.f.Log = log
	st, err := r.poll(t)
	if err != nil || st.Fetched != n || st.Deleted != n || len(p.left()) != 0 {
		t.Fatalf("poll %+v %v, server left %v; want %d fetched and deleted", st, err, p.left(), n)
	}
	r.checkFake(t)
	lines := transcriptLines(t, r.log.String())
	at := func(prefix string) int { return lineAt(lines, prefix) }
	for k := 1; k < n; k++ {
		sent, read := at(fmt.Sprintf("C RETR %d", k+1)), at(fmt.Sprintf("S [RETR %d body", k))
		if sent < 0 || read < 0 || sent > read {
			t.Fatalf("RETR %d at line %d, RETR %d's body read at line %d: want it sent ahead\n%s", k+1, sent, k, read, strings.Join(lines, "\n"))
		}
		// Only one ahead: RETR k+2 waits until message k is read whole,
		// so a reset after a cut cannot cost an earlier, innocent message.
		if later := at(fmt.Sprintf("C RETR %d", k+2)); k+2 <= n && later < read {
			t.Fatalf("RETR %d at line %d, before RETR %d's body was read (line %d)", k+2, later, k, read)
		}
	}
	if first, last := at("C DELE"), at(fmt.Sprintf("S [RETR %d body", n)); first < last {
		t.Fatalf("a DELE at line %d before the last message was read (line %d)", first, last)
	}
}

// TestStopFinishesRetrsInFlight: a stop asked while a RETR is in flight
// ahead of the message in hand finishes those too (their replies are on
// their way; cutting them would waste them), sends no further RETR, deletes
// exactly what it fetched and ends with QUIT; the rest stays on the
// server untouched for the next poll.
func TestStopFinishesRetrsInFlight(t *testing.T) {
	const n = 30
	r, p := newFakeRig(t, fakeMessages(n)...)
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cmds commandLog
	p.hook = cmds.hook(func(cmd string) {
		if cmd == "RETR 2" {
			cancel()
		}
	})
	st, err := r.f.Poll(stop, &r.cfg.Account[0])
	if err != nil {
		t.Fatal(err)
	}
	retrs := cmds.verbs("RETR")
	if st.Fetched != len(retrs) || st.Deleted != len(retrs) || len(retrs) < 2 || len(retrs) > 2+pop3.MaxAhead {
		t.Fatalf("poll %+v with RETRs %v sent: want every RETR sent fetched and deleted, 2 to %d of them", st, retrs, 2+pop3.MaxAhead)
	}
	if left := p.left(); len(left) != n-len(retrs) || left[0] != fmt.Sprintf("u%d", len(retrs)) {
		t.Fatalf("server left %v after %d fetched", left, len(retrs))
	}
	if q := cmds.verbs("QUIT"); len(q) != 1 {
		t.Fatalf("commands %v: want the session to end with QUIT", cmds.cmds)
	}
	if n := incomingCount(t, r); n != len(retrs) {
		t.Fatalf("incoming/ holds %d, want %d", n, len(retrs))
	}
}

// TestNoRetrAheadPastLimits: max_messages and max_bytes stop the RETRs
// sent ahead too: the server sees a RETR only for the messages the poll
// takes.
func TestNoRetrAheadPastLimits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit func(r *rig)
	}{
		{"max_messages", func(r *rig) { r.cfg.Account[0].MaxMessages = 3 }},
		{"max_bytes", func(r *rig) { r.cfg.Account[0].MaxBytes = config.Size(3*len(fakeMessages(1)[0].data) + 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, p := newFakeRig(t, fakeMessages(7)...)
			tc.limit(r)
			var cmds commandLog
			p.hook = cmds.hook(nil)
			st, err := r.poll(t)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"RETR 1", "RETR 2", "RETR 3"}
			if got := cmds.verbs("RETR"); !slices.Equal(got, want) || st.Fetched != 3 {
				t.Fatalf("RETRs %v, %+v; want %v", got, st, want)
			}
		})
	}
}

// TestOversizeBetweenDownloads: a message over max_size between two
// others is taken with TOP in its turn: no RETR is sent ahead past it,
// so no reply comes out of order.
func TestOversizeBetweenDownloads(t *testing.T) {
	msgs := fakeMessages(4)
	msgs[1].data = append([]byte("Subject: big\r\n\r\n"), []byte(strings.Repeat("x", 4000)+"\r\n")...)
	r, p := newFakeRig(t, msgs...)
	a := &r.cfg.Account[0]
	a.MaxSize, a.Oversize = 1000, "headers"
	var cmds commandLog
	p.hook = cmds.hook(nil)
	st, err := r.poll(t)
	if err != nil || st.Fetched != 3 || st.Stubbed != 1 {
		t.Fatalf("poll %+v %v", st, err)
	}
	want := []string{"RETR 1", "TOP 2 0", "RETR 3", "RETR 4"}
	if got := cmds.verbs("RETR", "TOP"); !slices.Equal(got, want) {
		t.Fatalf("commands %v, want %v", got, want)
	}
	if left := p.left(); !slices.Equal(left, []string{"u1"}) {
		t.Fatalf("server left %v, want the big one", left)
	}
}

// TestAccountWithoutPipelining: pipelining = false on the account (for a
// server that offers PIPELINING and mishandles it) sends each RETR only
// after the reply to the one before it has been read.
func TestAccountWithoutPipelining(t *testing.T) {
	r, p := newFakeRig(t, fakeMessages(4)...)
	off := false
	r.cfg.Account[0].Pipelining = &off
	log, err := event.NewLogger(r.log, "fetchd", "trace", "json")
	if err != nil {
		t.Fatal(err)
	}
	r.f.Log = log
	if st, err := r.poll(t); err != nil || st.Fetched != 4 || len(p.left()) != 0 {
		t.Fatalf("poll %+v %v, server left %v", st, err, p.left())
	}
	lines := transcriptLines(t, r.log.String())
	at := func(prefix string) int { return lineAt(lines, prefix) }
	for k := 1; k < 4; k++ {
		if sent, read := at(fmt.Sprintf("C RETR %d", k+1)), at(fmt.Sprintf("S [RETR %d body", k)); sent < read {
			t.Fatalf("RETR %d at line %d before RETR %d's body (line %d) with pipelining = false", k+1, sent, k, read)
		}
	}
}

// TestStopWithKnownBetweenRetrs: a stop asked while a RETR is in flight
// past a message fetched before (kept on the server, so known) still
// finishes that RETR and ends with QUIT: the known message in between
// does not end the loop with a reply unread.
func TestStopWithKnownBetweenRetrs(t *testing.T) {
	a, b := fakeMessage("a", "kept one"), fakeMessage("b", "kept two")
	r, p := newFakeRig(t, a, b)
	r.cfg.Account[0].Keep = true
	if st, err := r.poll(t); err != nil || st.Fetched != 2 {
		t.Fatalf("first poll %+v %v", st, err)
	}
	c, d := fakeMessage("c", "new one"), fakeMessage("d", "new two")
	r.want["c"], r.want["d"] = stuffless(c.data), stuffless(d.data)
	p.mu.Lock()
	p.msgs = []fakeMsg{c, a, d, b} // known ones between the new ones
	p.mu.Unlock()
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cmds commandLog
	p.hook = cmds.hook(func(cmd string) {
		if cmd == "RETR 3" { // sent ahead while RETR 1 is in hand
			cancel()
		}
	})
	st, err := r.f.Poll(stop, &r.cfg.Account[0])
	if err != nil || st.Fetched != 2 {
		t.Fatalf("poll %+v %v; want c and d fetched, no error", st, err)
	}
	if got := cmds.verbs("RETR", "QUIT"); !slices.Equal(got, []string{"RETR 1", "RETR 3", "QUIT"}) {
		t.Fatalf("commands %v, want RETR 1, RETR 3, QUIT", got)
	}
	r.checkFake(t)
}
