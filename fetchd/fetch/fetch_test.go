package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
	"example.org/popspool/spooltest/pop3srv"
	"example.org/popspool/spooltest/samples"
)

type rig struct {
	srv  *pop3srv.Server
	cfg  *config.Config
	s    *spool.Spool
	f    *Fetcher
	log  *logBuf
	want map[string][]byte // sample name -> bytes a client receives
}

// logBuf collects fetchd's JSON log lines for tests to look at events.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// events returns the log lines carrying event id.
func (l *logBuf) events(id event.ID) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if n, ok := m["event"].(float64); ok && event.ID(n) == id {
			out = append(out, m)
		}
	}
	return out
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	box := filepath.Join(dir, "box")
	names, err := samples.WriteTo(box)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{want: map[string][]byte{}}
	for _, n := range names {
		b, _ := samples.Read(n)
		if !bytes.HasSuffix(b, []byte("\r\n")) {
			b = append(b, '\r', '\n') // POP3 ends the last line with CRLF
		}
		r.want[n] = b
	}
	r.srv = &pop3srv.Server{Dir: box, User: "u", Pass: "p"}
	addr, err := r.srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.srv.Close() })
	r.setup(t, dir, config.Account{Server: addr.String(), TLS: "none", AllowPlaintext: true, Username: "u"}, "p")
	return r
}

// setup completes account a (name office, timeouts, sizes), writes its
// password file and opens a spool and a Fetcher under dir.
func (r *rig) setup(t testing.TB, dir string, a config.Account, password string) {
	t.Helper()
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte(password+"\n"), 0o600)
	a.Name, a.PasswordFile = "office", pass
	a.Timeout = config.Duration(5 * time.Second)
	a.Interval = config.Duration(time.Minute)
	a.MaxSize = 50 << 20
	a.Routing = config.Routing{DeliverTo: []string{"a@l"}}
	r.cfg = &config.Config{Account: []config.Account{a}}
	var err error
	r.s, err = spool.Open(filepath.Join(dir, "spool"), "fetchd", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.s.Close() })
	r.log = &logBuf{}
	r.reopen(t)
}

// reopen starts a new Fetcher on the same spool, as a restart would.
func (r *rig) reopen(t testing.TB) {
	if r.f != nil {
		r.f.Close()
	}
	// Debug, as with log.level = "debug": zerolog.New logs at trace,
	// which would add transcripts (transcript_test.go asks for them).
	f, err := New(r.s, r.cfg, zerolog.New(r.log).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	r.f = f
	t.Cleanup(f.Close)
}

func (r *rig) poll(t testing.TB) (Stats, error) {
	return r.f.Poll(context.Background(), &r.cfg.Account[0])
}

// check asserts that incoming/ holds every sample exactly once, byte exact
// after fetchd's two trace header fields.
func (r *rig) check(t *testing.T) {
	t.Helper()
	entries, _ := os.ReadDir(r.s.Dir(spool.Incoming))
	var got []string
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(r.s.Dir(spool.Incoming), e.Name()))
		_, msg, ok := strings.Cut(string(b), "X-Popspool-Account: office\r\n")
		if !ok || !strings.HasPrefix(string(b), "Received: from 127.0.0.1\r\n") {
			t.Fatalf("%s: no trace header: %.200q", e.Name(), b)
		}
		got = append(got, msg)
	}
	var want []string
	for _, b := range r.want {
		want = append(want, string(b))
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
		t.Fatalf("incoming/ holds %d messages, want the %d samples, each once and byte-identical", len(got), len(want))
	}
}

func TestFetchAllOnceAndDelete(t *testing.T) {
	r := newRig(t)
	st, err := r.poll(t)
	if err != nil {
		t.Fatal(err)
	}
	if st.Fetched != len(r.want) || st.Deleted != len(r.want) {
		t.Fatalf("stats %+v", st)
	}
	r.check(t)
	if left := r.srv.Stats().Left; left != 0 {
		t.Fatalf("%d messages left on the server", left)
	}
}

func TestCutAfterDeleBeforeQuitCausesNoDuplicate(t *testing.T) {
	r := newRig(t)
	var cut atomic.Bool
	cut.Store(true)
	r.srv.SetFault(func(ev pop3srv.Event) bool {
		return cut.Load() && ev.Name == pop3srv.EvCommand && ev.Cmd == "QUIT"
	})
	if _, err := r.poll(t); err == nil {
		t.Fatal("cut session reported success")
	}
	if left := r.srv.Stats().Left; left != len(r.want) {
		t.Fatalf("server should still hold all %d (no QUIT), holds %d", len(r.want), left)
	}
	cut.Store(false)
	r.reopen(t)
	st, err := r.poll(t)
	if err != nil || st.Fetched != 0 || st.Deleted != len(r.want) {
		t.Fatalf("second poll %+v %v", st, err)
	}
	r.check(t)
	if left := r.srv.Stats().Left; left != 0 {
		t.Fatalf("%d left on the server", left)
	}
}

func TestCutMidRetrLosesNothing(t *testing.T) {
	r := newRig(t)
	var retrs atomic.Int32
	r.srv.SetFault(func(ev pop3srv.Event) bool {
		if ev.Name == pop3srv.EvRetr && ev.Bytes == 0 {
			return retrs.Add(1) == 7
		}
		return false
	})
	if _, err := r.poll(t); err == nil {
		t.Fatal("cut session reported success")
	}
	r.reopen(t)
	if _, err := r.poll(t); err != nil {
		t.Fatal(err)
	}
	r.check(t)
}

func TestKeepLeavesMailAndFetchesOnce(t *testing.T) {
	r := newRig(t)
	r.cfg.Account[0].Keep = true
	for i := 0; i < 2; i++ {
		st, err := r.poll(t)
		if err != nil || st.Deleted != 0 {
			t.Fatalf("poll %d: %+v %v", i, st, err)
		}
	}
	r.check(t)
	if left := r.srv.Stats().Left; left != len(r.want) {
		t.Fatalf("keep: %d left", left)
	}
}

func TestRecoveryMovesRecordedPartsAndDropsOthers(t *testing.T) {
	r := newRig(t)
	recorded, stray := spool.NewID(), spool.NewID()
	j := r.f.journals["office"]
	j.add("uid-1", recorded, time.Now())
	j.sync()
	os.WriteFile(filepath.Join(r.s.TmpDir(), recorded+".part"), []byte("Subject: x\r\n\r\nb\r\n"), 0o600)
	os.WriteFile(filepath.Join(r.s.TmpDir(), stray+".part"), []byte("half"), 0o600)
	r.reopen(t)
	if _, err := os.Stat(filepath.Join(r.s.Dir(spool.Incoming), recorded+".eml")); err != nil {
		t.Fatal("recorded part not moved on:", err)
	}
	if _, err := os.Stat(filepath.Join(r.s.TmpDir(), stray+".part")); !os.IsNotExist(err) {
		t.Fatal("unrecorded part kept")
	}
}

// TestListingCutAtMaxListing: a mailbox listing more than max_listing
// messages (the samples, with max_listing 10) costs a session no more than
// max_listing entries: each session takes the first ones (event 2035), and
// the next sessions the rest, each message once; the journal forgets none
// of what it did not see (issue 16.3). Before, up to 2^20 entries were kept.
func TestListingCutAtMaxListing(t *testing.T) {
	r := newRig(t)
	r.cfg.Account[0].MaxListing = 10
	total := len(r.want)
	if total <= 20 {
		t.Fatalf("want more than 20 samples, have %d", total)
	}
	for polls := 1; ; polls++ {
		st, err := r.poll(t)
		if err != nil {
			t.Fatal(err)
		}
		if st.Listed > 10 {
			t.Fatalf("poll %d took in %d listing entries, want at most 10", polls, st.Listed)
		}
		if r.srv.Stats().Left == 0 {
			break
		}
		if polls > total {
			t.Fatal("the mailbox did not empty")
		}
	}
	r.check(t)
	if n := len(r.log.events(event.ListingCut)); n < 2 {
		t.Fatalf("%d events 2035, want one per cut session:\n%s", n, r.log)
	}
}
