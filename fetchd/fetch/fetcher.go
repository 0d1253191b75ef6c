// Package fetch is fetchd's work: per account, POP3 sessions that bring
// every message home exactly once, the UIDL journals that make that so,
// and the schedule that polls each account on its interval.
package fetch

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// Fetcher fetches the accounts of one config into one spool.
type Fetcher struct {
	S        *spool.Spool
	Cfg      *config.Config
	Log      zerolog.Logger
	Host     string // our name in Received headers
	journals map[string]*uidls
	backoff  time.Duration // first pause after a failure; doubles per failure
	// noPipelining turns PIPELINING off (benchmarks measure what it brings).
	noPipelining bool
	// stallBudget, if set, replaces each account's (see stallBudget).
	stallBudget time.Duration
	// retrBudget, if set, replaces every RETR's time budget (retrBudget).
	retrBudget time.Duration
	// stopGrace and listingBudget, if set, replace stopGrace and each
	// session's listingBudget (tests).
	stopGrace, listingBudget time.Duration
	// batchSize, if set, replaces batchSize (tests: several batches
	// from a few messages).
	batchSize int

	// httpClient, if set, makes the OAuth token requests (tests);
	// oauthDir is the state folder when there is no spool (fetchd check).
	httpClient *http.Client
	oauthDir   string

	mem *Memory
}

// Memory is what fetchd knows about its accounts beyond the spool, for as
// long as the process lives: the circuit breaker's state and the
// server's LOGIN-DELAY. A config reload makes a new Fetcher; giving it the
// old one's Memory (SetMemory) keeps a stopped account stopped unless its
// settings changed.
type Memory struct {
	mu     sync.Mutex
	states map[string]*acctState
	saveMu sync.Mutex // one rewrite of the breaker file at a time
	key    []byte     // of the breaker file's prints (breaker.go)
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{states: map[string]*acctState{}} }

// SetMemory makes f use m (shared with earlier Fetchers of this process).
// What New read from the breaker file fills in the accounts m does not
// know yet (m is empty at the first start).
func (f *Fetcher) SetMemory(m *Memory) {
	m.mu.Lock()
	for name, st := range f.mem.states {
		if _, ok := m.states[name]; !ok {
			m.states[name] = st
		}
	}
	if m.key == nil {
		m.key = f.mem.key
	}
	m.mu.Unlock()
	f.mem = m
}

// New opens the UIDL journal of every account and recovers what a crash
// left in tmp/fetchd: a sealed part with a journal record is moved on to
// incoming/; one without is deleted (no DELE was sent for it, so the
// server still has it and it is fetched again).
func New(s *spool.Spool, cfg *config.Config, log zerolog.Logger) (*Fetcher, error) {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	f := &Fetcher{S: s, Cfg: cfg, Log: log, Host: host, journals: map[string]*uidls{},
		backoff: time.Minute, mem: NewMemory()}
	for i := range cfg.Account {
		a := &cfg.Account[i]
		u, err := openUIDLs(s, a.Name)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("account %s: %w", a.Name, err)
		}
		if u.torn > 0 {
			event.Emit(&log, event.JournalTorn).Str("account", a.Name).Int64("bytes", u.torn).Msg("a crash left a torn record; cut away")
		}
		u.j.Damage().Report(&log)
		f.journals[a.Name] = u
	}
	if err := f.loadBreakers(); err != nil {
		f.Close()
		return nil, err
	}
	return f, f.recover()
}

func (f *Fetcher) recover() error {
	recorded := map[string]bool{}
	for _, u := range f.journals {
		for id := range u.ids() {
			recorded[id] = true
		}
	}
	eml, part, other, err := f.S.Leftovers()
	if err != nil {
		return err
	}
	for _, p := range append(eml, part...) {
		id := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(p), ".part"), ".eml")
		if recorded[id] && stale(f.S, id) {
			// A power cut kept the old name of a rename whose new name
			// also survived: the message is already in incoming/.
			other = append(other, p)
			continue
		}
		if recorded[id] {
			if _, err := f.S.Move(p, spool.Incoming, id); err != nil {
				return err
			}
			event.Emit(&f.Log, event.Recovered).Str("id", id).Msg("fetched before a crash; moved on to incoming/")
			continue
		}
		other = append(other, p)
	}
	for _, p := range other {
		event.Emit(&f.Log, event.Recovered).Str("file", filepath.Base(p)).Msg("unrecorded download removed; it is still on the server")
		if err := f.S.Remove(p); err != nil {
			return err
		}
	}
	return nil
}

// stale reports whether message id is already in incoming/.
func stale(s *spool.Spool, id string) bool {
	_, err := os.Stat(filepath.Join(s.Dir(spool.Incoming), id+".eml"))
	return err == nil
}

// Close closes the journals.
func (f *Fetcher) Close() {
	for _, u := range f.journals {
		u.close()
	}
}

// traceHeader is what fetchd puts above each message: a Received field
// naming the server, the account and the UIDL (so the local server's
// filters can tell fetched mail from local mail), and the account.
func (f *Fetcher) traceHeader(a *config.Account, uidl, id string) string {
	host, _, err := net.SplitHostPort(a.Server)
	if err != nil {
		host = a.Server
	}
	proto := "POP3"
	if a.TLS != "none" {
		proto = "POP3S"
	}
	return fmt.Sprintf("Received: from %s\r\n\tby %s (popspool fetchd; account %s; uidl %s)\r\n\twith %s id %s;\r\n\t%s\r\nX-Popspool-Account: %s\r\n",
		host, f.Host, a.Name, commentSafe(uidl), proto, id, time.Now().Format(time.RFC1123Z), a.Name)
}

// commentSafe percent-encodes what could end or confuse a header comment.
func commentSafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c > 0x20 && c < 0x7f && !strings.ContainsRune(`()\%;"`, rune(c)) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
