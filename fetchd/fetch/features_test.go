package fetch

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
	"example.org/popspool/spooltest/faultproxy"
)

// waitFor polls cond for up to limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runFor starts f.Run and returns a function that stops it and returns its
// error.
func runFor(t *testing.T, f *Fetcher) func() error {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Error("Run did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func incoming(t *testing.T, s *spool.Spool) []string {
	t.Helper()
	ents, err := os.ReadDir(s.Dir(spool.Incoming))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(s.Dir(spool.Incoming), e.Name()))
		out = append(out, string(b))
	}
	return out
}

// TestSTLSFailureStopsSession: with tls = "starttls" and a server that
// does not offer STLS, the session stops with the TLS event before any
// credential is sent: no silent downgrade (RFC 2595 §4).
func TestSTLSFailureStopsSession(t *testing.T) {
	r := newRig(t)
	var mu sync.Mutex
	var sent []string
	p := faultproxy.Start(t, r.cfg.Account[0].Server, func(_ int, dir faultproxy.Dir, line []byte) bool {
		if dir == faultproxy.Up {
			mu.Lock()
			sent = append(sent, strings.TrimSpace(string(line)))
			mu.Unlock()
		}
		return false
	})
	a := &r.cfg.Account[0]
	a.Server, a.TLS, a.AllowPlaintext = p.Addr, "starttls", false
	if _, err := r.poll(t); err == nil {
		t.Fatal("session without STLS reported success")
	}
	if len(r.log.events(event.TLSFailed)) != 1 {
		t.Fatalf("want one TLSFailed event:\n%s", r.log)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range sent {
		if verb, _, _ := strings.Cut(l, " "); verb != "CAPA" && verb != "QUIT" {
			t.Errorf("client sent %q in clear after STLS was not offered", l)
		}
	}
	if r.srv.Stats().Logins != 0 || len(incoming(t, r.s)) != 0 {
		t.Fatal("logged in or fetched without TLS")
	}
}

// TestCircuitBreaker: a wrong password is tried breakerTrips times, then
// the account stops and says so every interval; fixing the password file
// resumes it.
func TestCircuitBreaker(t *testing.T) {
	r := newRig(t)
	a := &r.cfg.Account[0]
	os.WriteFile(a.PasswordFile, []byte("wrong\n"), 0o600)
	a.Interval = config.Duration(30 * time.Millisecond)
	r.f.backoff = 5 * time.Millisecond
	stop := runFor(t, r.f)
	waitFor(t, 10*time.Second, "three reminders", func() bool { return len(r.log.events(event.LoginStopped)) >= 3 })
	if n := r.srv.Stats().Sessions; n != breakerTrips {
		t.Fatalf("%d login attempts, want exactly %d", n, breakerTrips)
	}
	ev := r.log.events(event.LoginStopped)[0]
	msg, _ := ev["message"].(string)
	if !strings.Contains(msg, "stopped polling account office after 3 refused logins: ") ||
		!strings.Contains(msg, "[AUTH] invalid credentials") || !strings.Contains(msg, "press Retrieve Now") {
		t.Fatalf("LoginStopped says %q", msg)
	}
	if stopped, _ := r.f.Stopped("office"); !stopped {
		t.Fatal("Stopped reports false")
	}
	os.WriteFile(a.PasswordFile, []byte("p\n"), 0o600)
	waitFor(t, 10*time.Second, "mail after the fix", func() bool { return r.srv.Stats().Left == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(r.log.events(event.LoginResumed)) != 1 {
		t.Fatalf("want one LoginResumed event:\n%s", r.log)
	}
	r.check(t)
}

// TestBreakerSurvivesRestart: a stopped account stays stopped across
// restarts while nothing changed (no further login is tried), two refusals
// plus one after a restart still trip it, the file holds neither the
// password nor the server's refusal in clear, and a password changed
// while fetchd was down resumes the account at start.
func TestBreakerSurvivesRestart(t *testing.T) {
	r := newRig(t)
	a := &r.cfg.Account[0]
	os.WriteFile(a.PasswordFile, []byte("wrong-pass-7c1\n"), 0o600)
	for i := 0; i < breakerTrips; i++ {
		r.poll(t)
		if i == breakerTrips-2 {
			r.reopen(t) // two refusals, then a restart: the count goes on
		}
	}
	r.reopen(t)
	if stopped, _ := r.f.Stopped("office"); !stopped {
		t.Fatalf("after %d refusals and restarts the account is not stopped:\n%s", breakerTrips, r.log)
	}
	b, err := os.ReadFile(filepath.Join(r.s.Dir(spool.State), breakerFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("wrong-pass")) || bytes.Contains(b, []byte("invalid credentials")) {
		t.Fatalf("the breaker file holds text in clear:\n%s", b)
	}
	stop := runFor(t, r.f)
	waitFor(t, 10*time.Second, "a reminder", func() bool { return len(r.log.events(event.LoginStopped)) >= 2 })
	stop()
	if n := r.srv.Stats().Sessions; n != breakerTrips {
		t.Fatalf("%d login attempts, want %d: the restarted fetchd tried again", n, breakerTrips)
	}
	os.WriteFile(a.PasswordFile, []byte("p\n"), 0o600)
	r.reopen(t)
	stop = runFor(t, r.f)
	waitFor(t, 10*time.Second, "mail after the fix", func() bool { return r.srv.Stats().Left == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(r.log.events(event.LoginResumed)); n != 1 {
		t.Fatalf("a fixed password resumed the account with %d events 2022, want 1:\n%s", n, r.log)
	}
	r.check(t)
}

// TestRetrieveNowResumesStoppedAccount: with nothing changed, Retrieve Now
// for the account (or for all with "all") is the operator's way to try a
// refused login again (the provider has unlocked the mailbox); a plain
// control/retrieve-now leaves it stopped, so that one press does not give
// every wrongly configured account three more refusals (issue 11.5).
func TestRetrieveNowResumesStoppedAccount(t *testing.T) {
	for _, c := range []struct {
		file, content string
		resumes       bool
	}{{"retrieve-now", "", false}, {"retrieve-now.office", "", true}, {"retrieve-now", "all\n", true}} {
		t.Run(c.file+"="+strings.TrimSpace(c.content), func(t *testing.T) {
			r := newRig(t)
			a := &r.cfg.Account[0]
			a.Interval = config.Duration(time.Hour)
			r.f.backoff = time.Millisecond
			r.srv.Pass = "locked"
			for i := 0; i < breakerTrips; i++ {
				r.poll(t)
			}
			r.srv.Pass = "p" // unlocked by the provider; our settings are the same
			stop := runFor(t, r.f)
			os.WriteFile(filepath.Join(r.s.Dir(spool.Control), c.file), []byte(c.content), 0o600)
			if c.resumes {
				waitFor(t, 10*time.Second, "mail after Retrieve Now", func() bool { return r.srv.Stats().Left == 0 })
			} else {
				waitFor(t, 10*time.Second, "event 2034", func() bool { return len(r.log.events(event.RetrieveSkipped)) == 1 })
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if got := len(r.log.events(event.LoginResumed)); got != map[bool]int{true: 1}[c.resumes] {
				t.Fatalf("%d LoginResumed, want resumed=%v:\n%s", got, c.resumes, r.log)
			}
			if !c.resumes {
				if r.srv.Stats().Left == 0 {
					t.Fatal("a plain retrieve-now logged in to an account its breaker stopped")
				}
				return
			}
			r.check(t)
		})
	}
}

// hold logs in with a raw connection and keeps the maildrop locked until
// the test ends.
func hold(t *testing.T, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	for _, cmd := range []string{"", "USER u", "PASS p"} {
		if cmd != "" {
			c.Write([]byte(cmd + "\r\n"))
		}
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			t.Fatalf("hold: %q %v", line, err)
		}
	}
}

// TestInUseBacksOffWithoutBreaker: [IN-USE] (RFC 2449 §8.1.2) is "later",
// not a refusal: any number of them never stops the account.
func TestInUseBacksOffWithoutBreaker(t *testing.T) {
	r := newRig(t)
	hold(t, r.cfg.Account[0].Server)
	for i := 0; i < breakerTrips+1; i++ {
		_, err := r.poll(t)
		if kindOf(err) != failBusy {
			t.Fatalf("poll %d: %v (kind %d), want busy", i, err, kindOf(err))
		}
	}
	if stopped, _ := r.f.Stopped("office"); stopped || len(r.log.events(event.MailboxInUse)) != breakerTrips+1 {
		t.Fatalf("stopped=%v; events:\n%s", stopped, r.log)
	}
}

// TestLoginReplies: how each reply to PASS is classified and reported.
func TestLoginReplies(t *testing.T) {
	for _, c := range []struct {
		reply string
		kind  failKind
		ev    event.ID
	}{
		{"-ERR [SYS/TEMP] backend down\r\n", failBusy, event.ServerTempFail},
		{"-ERR [LOGIN-DELAY] too soon\r\n", failBusy, event.MailboxInUse},
		{"-ERR [IN-USE] locked\r\n", failBusy, event.MailboxInUse},
		{"-ERR [SYS/PERM] account disabled\r\n", failRefused, event.LoginFailed},
		{"-ERR [AUTH] bad password\r\n", failRefused, event.LoginFailed},
		{"-ERR Logon failure: Unknown user name or bad password.\r\n", failRefused, event.LoginFailed},
		{"-ERR [X-WHATEVER] hmm\r\n", failBusy, event.ServerTempFail},
		{"HELLO\r\n", failOther, event.ProtocolError},
	} {
		r, p := newFakeRig(t, fakeMessage("a", "one"))
		p.hook = func(_ int, cmd string) (string, hookAction) {
			if strings.HasPrefix(cmd, "PASS") {
				return c.reply, hookReply
			}
			return "", hookPass
		}
		_, err := r.poll(t)
		if kindOf(err) != c.kind || len(r.log.events(c.ev)) != 1 {
			t.Errorf("%q: kind %d (want %d), err %v; log:\n%s", c.reply, kindOf(err), c.kind, err, r.log)
		}
	}
}

// TestLoginDelayHonoured: a server announcing LOGIN-DELAY 1 (RFC 2449
// §6.5) is not logged into more than once a second, whatever the interval
// and even when retrieve-now is asked for.
func TestLoginDelayHonoured(t *testing.T) {
	r, p := newFakeRig(t, fakeMessage("a", "one"))
	p.capa = []string{"LOGIN-DELAY 1"}
	r.cfg.Account[0].Interval = config.Duration(20 * time.Millisecond)
	stop := runFor(t, r.f)
	waitFor(t, 5*time.Second, "first login", func() bool { return len(p.loginTimes()) >= 1 })
	os.WriteFile(filepath.Join(r.s.Dir(spool.Control), "retrieve-now"), nil, 0o600)
	time.Sleep(2300 * time.Millisecond)
	stop()
	logins := p.loginTimes()
	if len(logins) < 2 || len(logins) > 3 {
		t.Fatalf("%d logins in 2.3s, want 2 or 3", len(logins))
	}
	for i := 1; i < len(logins); i++ {
		if gap := logins[i].Sub(logins[i-1]); gap < 990*time.Millisecond {
			t.Fatalf("logins %d and %d only %v apart", i-1, i, gap)
		}
	}
	if len(r.log.events(event.LoginDelay)) < 1 {
		t.Fatalf("no LoginDelay event:\n%s", r.log)
	}
}

// TestExpireWarnsOnce: EXPIRE 5 (RFC 2449 §6.7) against keep_days = 10.
func TestExpireWarnsOnce(t *testing.T) {
	r, p := newFakeRig(t, fakeMessage("a", "one"))
	p.capa = []string{"EXPIRE 5"}
	a := &r.cfg.Account[0]
	a.Keep, a.KeepDays = true, 10
	for i := 0; i < 2; i++ {
		if _, err := r.poll(t); err != nil {
			t.Fatal(err)
		}
	}
	evs := r.log.events(event.ExpireSooner)
	if len(evs) != 1 || !strings.Contains(evs[0]["message"].(string), "after 5 days (EXPIRE), before keep_days = 10") {
		t.Fatalf("ExpireSooner events: %v", evs)
	}
	for _, c := range []struct {
		keep     bool
		days     int
		expire   string
		complain bool
	}{
		{false, 0, "0", false}, {true, 0, "NEVER", false}, {true, 0, "30", true}, {true, 0, "0", true},
		{true, 30, "60 USER", false}, {true, 30, "", false}, {true, 30, "junk", false},
	} {
		got := expireProblem(&config.Account{Keep: c.keep, KeepDays: c.days}, c.expire)
		if (got != "") != c.complain {
			t.Errorf("keep %v keep_days %d EXPIRE %q: %q", c.keep, c.days, c.expire, got)
		}
	}
}

// TestOversizeHeaders: with oversize = "headers" a message over max_size
// stays on the server and its header with a notice goes to incoming/,
// once; the rest flows; raising max_size fetches it whole.
func TestOversizeHeaders(t *testing.T) {
	r := newRig(t)
	a := &r.cfg.Account[0]
	a.MaxSize, a.Oversize = 3000, "headers"
	st, err := r.poll(t)
	if err != nil || st.Stubbed != 4 || st.Fetched != 20 || st.Deleted != 20 {
		t.Fatalf("first poll %+v %v", st, err)
	}
	if left := r.srv.Stats().Left; left != 4 {
		t.Fatalf("%d left on the server, want the 4 big ones", left)
	}
	stubs := 0
	for _, m := range incoming(t, r.s) {
		if !strings.Contains(m, "X-Popspool-Oversize: ") {
			continue
		}
		stubs++
		head, body, _ := strings.Cut(m, "\r\n\r\n")
		if !strings.Contains(head, "\r\nSubject: ") || !strings.Contains(head, "\r\nContent-Type: text/plain; charset=utf-8\r\n") ||
			!strings.Contains(body, "This message was not delivered in full.") || !strings.Contains(body, "(max_size)") {
			t.Fatalf("stub:\n%s", m)
		}
		if strings.Count(head, "\r\nContent-Type:") != 1 {
			t.Fatalf("stub keeps the original Content-Type active:\n%s", head)
		}
	}
	if stubs != 4 || len(r.log.events(event.OversizeStub)) != 4 {
		t.Fatalf("%d stubs, want 4", stubs)
	}
	st, err = r.poll(t)
	if err != nil || st.Stubbed != 0 || st.Fetched != 0 || st.Deleted != 0 {
		t.Fatalf("second poll %+v %v", st, err)
	}
	a.MaxSize = 50 << 20
	st, err = r.poll(t)
	if err != nil || st.Fetched != 4 || st.Deleted != 4 || r.srv.Stats().Left != 0 {
		t.Fatalf("after raising max_size %+v %v", st, err)
	}
}

// TestOversizeLeave: the default leaves big messages on the server with an
// event, and the rest of the mailbox still flows.
func TestOversizeLeave(t *testing.T) {
	r := newRig(t)
	r.cfg.Account[0].MaxSize = 3000
	st, err := r.poll(t)
	if err != nil || st.Skipped != 4 || st.Fetched != 20 {
		t.Fatalf("poll %+v %v", st, err)
	}
	if r.srv.Stats().Left != 4 || len(r.log.events(event.TooBig)) != 4 || len(incoming(t, r.s)) != 20 {
		t.Fatalf("left %d, log:\n%s", r.srv.Stats().Left, r.log)
	}
}

// TestBreakerResumesOnConfigChange: the operator fixes the username in the
// config file; the stopped account notices at its next reminder, takes the
// new settings and fetches, without a restart.
func TestBreakerResumesOnConfigChange(t *testing.T) {
	r := newRig(t)
	a := r.cfg.Account[0]
	conf := filepath.Join(t.TempDir(), "popspool.toml")
	write := func(user string) {
		text := fmt.Sprintf("spool = %q\n[[account]]\nname = \"office\"\nserver = %q\ntls = \"none\"\nallow_plaintext = true\n"+
			"username = %q\npassword_file = %q\ninterval = \"1s\"\ndeliver_to = [\"a@l.example\"]\n",
			t.TempDir(), a.Server, user, a.PasswordFile)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("nobody")
	cfg, err := config.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	r.cfg = cfg
	r.reopen(t)
	r.f.backoff = 5 * time.Millisecond
	stop := runFor(t, r.f)
	waitFor(t, 10*time.Second, "the breaker", func() bool { return len(r.log.events(event.LoginStopped)) >= 1 })
	write("u")
	waitFor(t, 10*time.Second, "mail after the fix", func() bool { return r.srv.Stats().Left == 0 })
	stop()
	if r.srv.Stats().Sessions != breakerTrips+1 || len(r.log.events(event.LoginResumed)) != 1 {
		t.Fatalf("sessions %d, log:\n%s", r.srv.Stats().Sessions, r.log)
	}
	r.check(t)
}
