package fetch

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/journal"
	"example.org/popspool/shared/spool"
)

// The circuit breaker's state outlives a restart, in state/fetchd.breaker:
// a service manager restarting a crashed fetchd, or an operator
// restarting it without fixing anything, must not buy a wrong password
// three more tries each time (servers lock out, providers ban). The file
// is rewritten whole (journal.RewriteFS) when a count changes, which only
// refused logins and the first good login after them do.
//
// Records, per account with something to remember: "acct <name-hex>
// <refused> <stopped 0|1> <settings-hex> <refusal-hex>". The settings are
// the account's fingerprint (which covers its password) as an HMAC keyed
// with the random key in state/fetchd.breaker.key (0600), which is not in
// this file: a copy of the breaker file (a backup, a support bundle, a
// status dump) is no aid to guessing the password offline. Files written
// before the key, with a "salt <hex>" record and salted SHA-256 prints,
// are still read and rewritten with the key at start.
const (
	breakerFile = "fetchd.breaker"
	keyFile     = "fetchd.breaker.key"
)

func (f *Fetcher) breakerPath() string {
	return filepath.Join(f.S.Dir(spool.State), breakerFile)
}

// keyed is the settings print as the breaker file stores it.
func keyed(key []byte, print string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(print))
	return hex.EncodeToString(h.Sum(nil))
}

// salted is the print of breaker files written before the key.
func salted(salt []byte, print string) string {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(print))
	return hex.EncodeToString(h.Sum(nil))
}

// readKey reads the breaker's key, if there is one yet.
func (f *Fetcher) readKey() error {
	recs, err := readRecords(filepath.Join(f.S.Dir(spool.State), keyFile), &f.Log)
	for _, r := range recs {
		if k, err := hex.DecodeString(r[len(r)-1]); r[0] == "key" && len(r) == 2 && err == nil && len(k) == 32 {
			f.mem.key = k
		}
	}
	return err
}

// newKey makes the breaker's key when it first has something to remember,
// and saves it. A key that cannot be saved still serves this process;
// after a restart the prints made with it match nothing and stopped
// accounts are tried again.
func (f *Fetcher) newKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	path := filepath.Join(f.S.Dir(spool.State), keyFile)
	if err := journal.RewriteFS(path, [][]string{{"key", hex.EncodeToString(k)}}, f.S.FS()); err != nil {
		event.Emit(&f.Log, event.SpoolIO).Err(err).Msg("could not save the circuit breaker's key; its state will not match after a restart")
	}
	return k
}

// loadBreakers reads the breaker file into f.mem. It logs nothing but
// damage to the file (event 1030): the
// first round of the account's loop does (mayResume), once, also after a
// reload, whose new Fetcher keeps the process's memory instead. An
// account stopped before the restart stays stopped while its settings are
// the same (event 2021 again); one whose settings changed meanwhile
// resumes (2022).
func (f *Fetcher) loadBreakers() error {
	if err := f.readKey(); err != nil {
		return err
	}
	recs, err := readRecords(f.breakerPath(), &f.Log)
	if err != nil {
		return err
	}
	var salt []byte
	for _, r := range recs {
		switch {
		case r[0] == "salt" && len(r) == 2:
			salt, _ = hex.DecodeString(r[1])
		case r[0] == "acct" && len(r) == 6:
			f.loadAccount(r[1:], salt)
		}
	}
	if salt != nil {
		f.saveBreakers() // in the keyed form
	}
	return nil
}

// loadAccount takes in one account's record; salt is that of a file
// written before the key, or nil.
func (f *Fetcher) loadAccount(r []string, salt []byte) {
	name, err1 := hex.DecodeString(r[0])
	refused, err2 := strconv.Atoi(r[1])
	text, err3 := unfield(r[4])
	a, ok := f.Cfg.AccountNamed(string(name))
	if errors.Join(err1, err2, err3) != nil || !ok {
		return // an account no longer configured is forgotten
	}
	st := f.state(a.Name)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.refused = refused
	if r[2] != "1" {
		return
	}
	st.stopped, st.stopText = true, string(text)
	print := f.fingerprint(a)
	if keyed(f.mem.key, print) == r[3] || salt != nil && salted(salt, print) == r[3] {
		st.stopPrint = print
	} // else no print matches: mayResume resumes it
}

// readRecords reads a journal's records without keeping it open; a
// missing file has none. Damage found is logged (event 1030).
func readRecords(path string, log *zerolog.Logger) ([][]string, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	j, recs, _, err := journal.Open(path)
	if err != nil {
		return nil, err
	}
	j.Damage().Report(log)
	j.Close()
	return recs, nil
}

// saveBreakers rewrites the breaker file from f.mem. A failure is logged
// and otherwise ignored: the breaker still works in memory.
func (f *Fetcher) saveBreakers() {
	m := f.mem
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	m.mu.Lock()
	if m.key == nil {
		m.key = f.newKey()
	}
	m.mu.Unlock()
	var recs [][]string
	for _, name := range m.names() {
		if r := m.record(name); r != nil {
			recs = append(recs, r)
		}
	}
	if err := journal.RewriteFS(f.breakerPath(), recs, f.S.FS()); err != nil {
		event.Emit(&f.Log, event.SpoolIO).Err(err).Msg("could not save the circuit breaker's state; it holds until fetchd stops")
	}
}

// record is the breaker record of account name, nil if there is nothing
// to remember.
func (m *Memory) record(name string) []string {
	m.mu.Lock()
	st := m.states[name]
	m.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.refused == 0 && !st.stopped {
		return nil
	}
	stopped, print := "0", "-"
	if st.stopped {
		stopped, print = "1", keyed(m.key, st.stopPrint)
	}
	return []string{"acct", hex.EncodeToString([]byte(name)), strconv.Itoa(st.refused), stopped, print,
		field(st.stopText)}
}

// field hex-encodes s as a journal field, which may not be empty.
func field(s string) string {
	if s == "" {
		return "-"
	}
	return hex.EncodeToString([]byte(s))
}

func unfield(f string) ([]byte, error) {
	if f == "-" {
		return nil, nil
	}
	return hex.DecodeString(f)
}

// names lists the accounts m knows.
func (m *Memory) names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.states))
	for n := range m.states {
		out = append(out, n)
	}
	return out
}

// resumeNow opens a stopped account's breaker because the operator asked
// for a poll of this account (control/retrieve-now.<account>, or
// control/retrieve-now holding "all"): the server may have been unlocked
// without any setting changing. A plain control/retrieve-now leaves a
// stopped account stopped (event 2034): one press to fetch the mail must
// not give every wrongly configured account three more refusals at its
// ISP (issue 11.5).
func (f *Fetcher) resumeNow(a *config.Account) {
	st := f.state(a.Name)
	st.mu.Lock()
	stopped, rearm := st.stopped, st.rearm
	st.rearm = false
	if rearm {
		st.stopped, st.refused = false, 0
	}
	st.mu.Unlock()
	switch {
	case stopped && rearm:
		event.Emit(&f.Log, event.LoginResumed).Str("account", a.Name).Msg("retrieve-now: trying the refused login again")
		f.saveBreakers()
	case stopped:
		event.Emit(&f.Log, event.RetrieveSkipped).Str("account", a.Name).
			Msg("retrieve-now: account stopped by refused logins stays stopped; create control/retrieve-now." + a.Name + " to try its login again")
	}
}
