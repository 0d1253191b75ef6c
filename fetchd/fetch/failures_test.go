package fetch

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/status"
	"example.org/popspool/spooltest/pop3srv"
)

// badFile is the message of brokenRig's maildrop that the server cannot
// serve (its UIDL badUIDL); m1, m2 come before it and m4, m5 after.
const badFile, badUIDL = "m3.eml", "m3"

// brokenRig is a rig whose server fails every RETR of badFile as how says.
func brokenRig(t *testing.T, how pop3srv.Breakage) *rig {
	t.Helper()
	dir := t.TempDir()
	box := filepath.Join(dir, "box")
	os.Mkdir(box, 0o755)
	r := &rig{want: map[string][]byte{}}
	for i := 1; i <= 5; i++ {
		name := fmt.Sprintf("m%d.eml", i)
		b := []byte(fmt.Sprintf("Subject: m%d\r\nFrom: a@example.net\r\n\r\nbody of message %d\r\n", i, i))
		os.WriteFile(filepath.Join(box, name), b, 0o644)
		r.want[name] = b
	}
	r.srv = &pop3srv.Server{Dir: box, User: "u", Pass: "p", Broken: func(file string) pop3srv.Breakage {
		if file == badFile {
			return how
		}
		return pop3srv.BreakNone
	}}
	addr, err := r.srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.srv.Close() })
	r.setup(t, dir, configAccount(addr.String()), "p")
	r.f.retrBudget = 300 * time.Millisecond // the endless message is cut by it
	return r
}

// subjects lists the Subject of every message in incoming/.
func subjects(t *testing.T, s *spool.Spool) []string {
	t.Helper()
	entries, err := os.ReadDir(s.Dir(spool.Incoming))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(s.Dir(spool.Incoming), e.Name()))
		_, rest, _ := strings.Cut(string(b), "\nSubject: ")
		subj, _, _ := strings.Cut(rest, "\r\n")
		out = append(out, subj)
	}
	sort.Strings(out)
	return out
}

// pollIdle polls once the server has ended every earlier session (a
// client that hangs up first may find the mailbox still locked).
func (r *rig) pollIdle(t *testing.T) (Stats, error) {
	t.Helper()
	waitFor(t, 5*time.Second, "the server's sessions to end", func() bool { return r.srv.Stats().Active == 0 })
	return r.poll(t)
}

// statusReport is what `popspool status` would print from fetchd's log.
func statusReport(t *testing.T, r *rig) string {
	t.Helper()
	tr := status.NewTracker("fetchd", "test")
	for _, line := range strings.SplitAfter(r.log.String(), "\n") {
		tr.Observe([]byte(line))
	}
	tr.SetState("running", "")
	f := tr.Snapshot()
	f.Updated = time.Now()
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, spool.Status), 0o700)
	if err := status.Save(root, &f); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	status.Report(&out, status.Input{Root: root, Accounts: []string{"office"}})
	return out.String()
}

// TestUndownloadableMessage: a maildrop of five where the third can never
// be downloaded (always -ERR, always cut mid-RETR, never ending). The four
// others are in incoming/ after two polls (one of them after a restart);
// every failure is counted in the journal and logged with the UIDL, the
// LIST size and the server's words; after attemptLimit the message is set
// aside: reported once, no longer tried, shown by status; once the server
// heals, Retrieve Now for that account fetches it.
func TestUndownloadableMessage(t *testing.T) {
	for _, c := range []struct {
		name  string
		how   pop3srv.Breakage
		words string // in the logged error
	}{
		{"always -ERR", pop3srv.BreakErr, "unable to read message file"},
		{"cut mid-RETR", pop3srv.BreakCut, "RETR 3"},
		{"never ends", pop3srv.BreakEndless, "took longer than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := brokenRig(t, c.how)
			a := &r.cfg.Account[0]
			for i := 1; i <= attemptLimit; i++ {
				r.pollIdle(t)
				if i == 1 {
					r.reopen(t) // the count survives a restart
					r.f.retrBudget = 300 * time.Millisecond
				}
				if i == 2 {
					if got := strings.Join(subjects(t, r.s), " "); got != "m1 m2 m4 m5" {
						t.Fatalf("after two polls incoming/ holds %q, want m1 m2 m4 m5\n%s", got, r.log)
					}
				}
			}
			failures := r.log.events(event.MessageFailed)
			if len(failures) != attemptLimit {
				t.Fatalf("%d failures logged, want %d:\n%s", len(failures), attemptLimit, r.log)
			}
			size := float64(len(r.want[badFile]))
			for i, f := range failures {
				if f["uidl"] != badUIDL || f["size"] != size || f["attempts"] != float64(i+1) ||
					!strings.Contains(fmt.Sprint(f["error"]), c.words) {
					t.Fatalf("failure %d logged as %v", i+1, f)
				}
			}
			if got := r.f.journals["office"].attempts[badUIDL]; got != attemptLimit {
				t.Fatalf("journal counts %d attempts", got)
			}
			st, err := r.pollIdle(t)
			if err != nil || st.SetAside != 1 || st.Failed != 0 {
				t.Fatalf("poll after the limit: %+v %v", st, err)
			}
			if n := len(r.log.events(event.MessageSetAside)); n != 1 {
				t.Fatalf("set aside reported %d times, want once:\n%s", n, r.log)
			}
			if left := r.srv.Stats().Left; left != 1 {
				t.Fatalf("%d messages left on the server, want the set-aside one", left)
			}
			if rep := statusReport(t, r); !strings.Contains(rep, "1 message on the server cannot be downloaded") {
				t.Fatalf("status does not show the message set aside:\n%s", rep)
			}

			r.srv.SetBroken(nil) // the provider mended it
			a.Interval = config.Duration(time.Hour)
			stop := runFor(t, r.f)
			os.WriteFile(filepath.Join(r.s.Dir(spool.Control), "retrieve-now.office"), nil, 0o600)
			waitFor(t, 10*time.Second, "the set-aside message after Retrieve Now", func() bool { return r.srv.Stats().Left == 0 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if len(r.log.events(event.SetAsideRetried)) != 1 {
				t.Fatalf("no event %d:\n%s", event.SetAsideRetried, r.log)
			}
			r.check(t)
			if rep := statusReport(t, r); strings.Contains(rep, "cannot be downloaded") {
				t.Fatalf("status still shows a message set aside:\n%s", rep)
			}
		})
	}
}

// TestAttemptsCompacted: failure counts (A records) survive a compaction
// and a reopen only for UIDLs the server still lists.
func TestAttemptsCompacted(t *testing.T) {
	r := newRig(t)
	j := r.f.journals["office"]
	j.add("old-1", spool.NewID(), time.Now())
	j.addAttempts("bad-1", 2, time.Now())
	j.addAttempts("bad-2", 5, time.Now())
	if err := j.sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.forget(map[string]bool{"old-1": true, "bad-2": true}); err != nil {
		t.Fatal(err)
	}
	r.reopen(t)
	j = r.f.journals["office"]
	if len(j.seen) != 1 || len(j.attempts) != 1 || j.attempts["bad-2"] != 5 {
		t.Fatalf("after compaction and reopen: seen %v attempts %v", j.seen, j.attempts)
	}
}

// TestRetrieveNowOneAccount: control/retrieve-now.<account> wakes that
// account's loop only; control/retrieve-now wakes every one.
func TestRetrieveNowOneAccount(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kicks := []chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() { defer close(done); r.f.watchControl(ctx, []string{"office", "shop"}, kicks) }()
	defer func() { cancel(); <-done }()
	press := func(name string) {
		p := filepath.Join(r.s.Dir(spool.Control), name)
		os.WriteFile(p, nil, 0o600)
		waitFor(t, 5*time.Second, name+" to be taken", func() bool { _, err := os.Stat(p); return os.IsNotExist(err) })
	}
	kicked := func(i int, wait time.Duration) bool {
		select {
		case <-kicks[i]:
			return true
		case <-time.After(wait):
			return false
		}
	}
	press("retrieve-now.shop")
	if !kicked(1, 5*time.Second) || kicked(0, 0) {
		t.Fatal("retrieve-now.shop did not wake shop alone")
	}
	press("retrieve-now")
	if !kicked(0, 5*time.Second) || !kicked(1, 5*time.Second) {
		t.Fatal("retrieve-now did not wake every account")
	}
	if evs := r.log.events(event.RetrieveNow); len(evs) != 2 || evs[0]["account"] != "shop" || evs[1]["account"] != nil {
		t.Fatalf("retrieve-now events: %v", evs)
	}
}
