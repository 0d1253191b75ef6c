package queue

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/deliverd/smtpc"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/spool"
)

// syncBuf is a log buffer the lanes may write from several goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestLanes makes one lane per target on one spool and ledger, the
// first named config.DefaultTarget; retry, if given for a name, is that
// lane's retry schedule.
func newTestLanes(t *testing.T, targets map[string]Target, retry map[string]time.Duration, log zerolog.Logger) *Lanes {
	t.Helper()
	lead := newQueue(t, targets[config.DefaultTarget])
	byName := map[string]*Queue{}
	for name, tg := range targets {
		cfg := *lead.Cfg
		if r, ok := retry[name]; ok {
			cfg.Deliver.Retry = []config.Duration{config.Duration(r)}
		}
		byName[name] = &Queue{S: lead.S, Cfg: &cfg, Log: log.With().Str("target_name", name).Logger(), Ledger: lead.Ledger, Target: tg}
	}
	ls, err := NewLanes(byName)
	if err != nil {
		t.Fatal(err)
	}
	if err := ls.Recover(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ls.Close()
		for _, q := range byName {
			q.Target.Close()
		}
	})
	return ls
}

// putFor writes a routed file for target ("" for no X-Popspool-Target
// line) into folder, with a text of its own in the body.
func putFor(t *testing.T, s *spool.Spool, folder, target, text string, rcpts ...string) string {
	t.Helper()
	id := spool.NewID()
	var b strings.Builder
	envelope.Envelope{Sender: "a@x", HasSender: true, Receivers: rcpts, Target: target}.Write(&b)
	b.WriteString("From: a@x\r\nSubject: " + text + "\r\n\r\n" + text + "\r\n")
	p := filepath.Join(s.Dir(folder), id+".eml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	os.Chtimes(p, old, old)
	return id
}

// hangingServer accepts connections and never says a word, as a server
// with a full process table or a black-holing firewall in front does.
func hangingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "smtp://" + ln.Addr().String()
}

// refusedURL is a loopback port nothing listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "smtp://" + addr
}

func smtpTo(t *testing.T, url string, timeout time.Duration) *SMTP {
	t.Helper()
	tg, err := smtpc.ParseTarget(url)
	if err != nil {
		t.Fatal(err)
	}
	return &SMTP{Target: tg, Opt: smtpc.Options{StartTLS: "none", Timeouts: smtpc.Timeouts{Connect: timeout, Greeting: timeout, Command: timeout}}}
}

func deferredFiles(s *spool.Spool) int {
	entries, _ := os.ReadDir(s.Dir(spool.Deferred))
	return len(entries)
}

// Issue 13.1: one target hangs after accepting the connection, another
// refuses connections; the mail for the working target is delivered
// within a fraction of the hanging one's time-out, and the hanging and
// refused lanes defer their own files after bounded time-outs, each on
// its own retry schedule, the X-Popspool-Target line kept.
func TestLaneHangingTargetDoesNotSlowOthers(t *testing.T) {
	good := newFake(t)
	hangTimeout := 4 * time.Second
	ls := newTestLanes(t, map[string]Target{
		config.DefaultTarget: smtpTo(t, good.url(), 10*time.Second),
		"hang":               smtpTo(t, hangingServer(t), hangTimeout),
		"refuse":             smtpTo(t, refusedURL(t), hangTimeout),
	}, map[string]time.Duration{"hang": 7 * time.Minute, "refuse": 9 * time.Minute}, zerolog.Nop())
	s := ls.lead.S
	var hung, refused []string
	for i := range 8 {
		hung = append(hung, putFor(t, s, spool.Pickup, "hang", "for-hang", "h@l"))
		refused = append(refused, putFor(t, s, spool.Pickup, "refuse", "for-refuse", "r@l"))
		putFor(t, s, spool.Pickup, "", "for-default", "d@l")
		_ = i
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- ls.Run(ctx, false) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(3 * hangTimeout):
			t.Error("Run did not stop within three time-outs of the hanging target")
		}
	}()
	waitUntil(t, 10*time.Second, func() bool { return good.copies("for-default") == 8 })
	took := time.Since(start)
	t.Logf("the working target's 8 messages: %v (hanging target's time-out %v)", took, hangTimeout)
	if took > hangTimeout/2 {
		t.Fatalf("the working target's 8 messages took %v, behind the hanging target (time-out %v)", took, hangTimeout)
	}
	if good.copies("for-hang")+good.copies("for-refuse") != 0 {
		t.Fatal("another lane's message reached the default target")
	}
	// A new message for the working target while the hanging lane is
	// still stuck: it is not queued behind that lane either.
	waitUntil(t, 2*time.Second, func() bool { return deferredFiles(s) >= 8 }) // the refused lane's, at once
	late := time.Now()
	putFor(t, s, spool.Pickup, "", "late-default", "d@l")
	waitUntil(t, 5*time.Second, func() bool { return good.copies("late-default") == 1 })
	t.Logf("a later message for the working target: %v", time.Since(late))
	if took := time.Since(late); took > hangTimeout/2 {
		t.Fatalf("a message for the working target waited %v behind the hanging lane", took)
	}
	waitUntil(t, 4*hangTimeout, func() bool { return deferredFiles(s) == 16 })
	for _, c := range []struct {
		ids    []string
		target string
		retry  time.Duration
	}{{hung, "hang", 7 * time.Minute}, {refused, "refuse", 9 * time.Minute}} {
		for _, id := range c.ids {
			env, _ := readFile(t, filepath.Join(s.Dir(spool.Deferred), id+".eml"))
			if env.Target != c.target || env.Attempts != 1 || env.LastError == "" {
				t.Fatalf("%s deferred as %+v", c.target, env)
			}
			if d := time.Until(env.NextAttempt); d < c.retry-time.Minute || d > c.retry+time.Second {
				t.Fatalf("%s lane: next attempt in %v, its retry is %v", c.target, d, c.retry)
			}
		}
	}
}

// A file naming a target the config no longer has is deferred (4041) and
// goes nowhere, the other files flow; once expired it is bounced as any
// deferral; with the target configured again, mv to pickup/ delivers it
// there.
func TestLaneUnknownTargetDeferred(t *testing.T) {
	good, other := newFake(t), newFake(t)
	var log syncBuf
	ls := newTestLanes(t, map[string]Target{
		config.DefaultTarget: smtpTo(t, good.url(), 10*time.Second),
		"other":              smtpTo(t, other.url(), 10*time.Second),
	}, nil, zerolog.New(&log))
	s := ls.lead.S
	gone := putFor(t, s, spool.Pickup, "gone", "for-gone", "g@l")
	putFor(t, s, spool.Pickup, "", "for-default", "d@l")
	putFor(t, s, spool.Pickup, "default", "named-default", "d@l")
	putFor(t, s, spool.Pickup, "OTHER", "for-other", "o@l")
	if err := ls.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if good.copies("for-default") != 1 || good.copies("named-default") != 1 || other.copies("for-other") != 1 || good.copies("for-gone")+other.copies("for-gone") != 0 {
		t.Fatalf("default got %d+%d, other %d, gone %d+%d", good.copies("for-default"), good.copies("named-default"), other.copies("for-other"),
			good.copies("for-gone"), other.copies("for-gone"))
	}
	path := filepath.Join(s.Dir(spool.Deferred), gone+".eml")
	env, _ := readFile(t, path)
	if env.Target != "gone" || !strings.Contains(env.LastError, `delivery target "gone" (X-Popspool-Target) is not in the config (targets: default, other)`) {
		t.Fatalf("deferred %+v", env)
	}
	if !strings.Contains(log.String(), `"event":4041`) || !strings.Contains(log.String(), `"target_name":"gone"`) {
		t.Fatalf("no event 4041:\n%s", log.String())
	}
	if ls.Unsent() != 1 {
		t.Fatalf("unsent %d", ls.Unsent())
	}

	// The operator renames the line to a configured target and moves it.
	rewriteTarget(t, path, "other")
	if err := os.Rename(path, filepath.Join(s.Dir(spool.Pickup), gone+".eml")); err != nil {
		t.Fatal(err)
	}
	if err := ls.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if other.copies("for-gone") != 1 {
		t.Fatal("not delivered to the target named by hand")
	}

	// Past expiry an unknown target's file is bounced like any deferral.
	gone2 := putFor(t, s, spool.Pickup, "gone", "for-gone-2", "g@l")
	ls.lead.nowFunc = func() time.Time { return time.Now().Add(49 * time.Hour) }
	if err := ls.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	env, _ = readFile(t, filepath.Join(s.Dir(spool.Badmail), gone2+".eml"))
	if !strings.Contains(env.LastError, "expired") || env.Target != "gone" {
		t.Fatalf("badmail %+v", env)
	}
	if good.copies("Delivery Status Notification")+good.copies("multipart/report") == 0 {
		t.Fatal("no DSN through the default target")
	}
}

func rewriteTarget(t *testing.T, path, target string) {
	t.Helper()
	env, msg := readFile(t, path)
	env.Target = target
	var b strings.Builder
	env.Write(&b)
	b.WriteString(msg)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	os.Chtimes(path, old, old)
}

func readFile(t *testing.T, path string) (envelope.Envelope, string) {
	t.Helper()
	env, m, err := readEnvelope(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer m.close()
	r, err := m.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return env, string(b)
}

func waitUntil(t *testing.T, limit time.Duration, ok func() bool) {
	t.Helper()
	end := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(end) {
			t.Fatalf("not so after %v", limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// After a death, the files deliverd had in hand are delivered alone
// before any lane starts, each by its own target's lane.
func TestLaneSuspectsDeliveredAloneByTheirTarget(t *testing.T) {
	good, other := newFake(t), newFake(t)
	ls := newTestLanes(t, map[string]Target{
		config.DefaultTarget: smtpTo(t, good.url(), 10*time.Second),
		"other":              smtpTo(t, other.url(), 10*time.Second),
	}, nil, zerolog.Nop())
	s := ls.lead.S
	ids := []string{putFor(t, s, spool.Pickup, "other", "suspect-other", "o@l"), putFor(t, s, spool.Pickup, "", "suspect-default", "d@l")}
	for _, id := range ids { // as a crash leaves them: in deliverd's hands
		if err := os.Rename(filepath.Join(s.Dir(spool.Pickup), id+".eml"), filepath.Join(s.TmpDir(), id+".eml")); err != nil {
			t.Fatal(err)
		}
	}
	putFor(t, s, spool.Pickup, "other", "plain-other", "o@l")
	if err := ls.Recover(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if !ls.lead.suspected(id) {
			t.Fatalf("%s not a suspect after recovery", id)
		}
	}
	if err := ls.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if other.copies("suspect-other") != 1 || good.copies("suspect-default") != 1 || other.copies("plain-other") != 1 {
		t.Fatalf("other got %d+%d, default %d", other.copies("suspect-other"), other.copies("plain-other"), good.copies("suspect-default"))
	}
	// Alone: the suspect of the other lane went first, in a session of
	// its own, before the plain file of its lane.
	if other.rcptsOf(0) == nil || !strings.Contains(firstData(other), "suspect-other") {
		t.Fatalf("the other lane's first message was not its suspect: %q", firstData(other))
	}
	for _, id := range ids {
		if len(ls.lead.book.Deaths(id)) != 0 || ls.lead.Ledger.Delivered(id) == false {
			t.Fatalf("%s: deaths %v, delivered %v", id, ls.lead.book.Deaths(id), ls.lead.Ledger.Delivered(id))
		}
	}
}

func firstData(f *fake) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		return ""
	}
	return f.got[0].data
}
