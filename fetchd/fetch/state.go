package fetch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
)

// breakerTrips is how many refused logins in a row stop an account
// (RFC 3206 §5 [AUTH], §4 [SYS/PERM], or a bare -ERR to the password).
// Servers lock out, and providers ban, addresses that keep trying a wrong
// password; one typo must not cost the office its mail for a day.
const breakerTrips = 3

// acctState is what fetchd remembers about an account between polls. The
// breaker's part (refused, stopped and why) is also kept on disk
// (breaker.go); the rest starts afresh at a restart.
type acctState struct {
	mu         sync.Mutex
	refused    int    // refused logins in a row
	stopped    bool   // the circuit breaker is open
	stopText   string // the server's last refusal
	stopPrint  string // the account's settings when it stopped
	loginDelay time.Duration
	lastLogin  time.Time // start of the last session that logged in
	expireSeen string    // the EXPIRE value last warned about
	release    bool      // Retrieve Now: the next poll tries the messages set aside
	rearm      bool      // Retrieve Now for this account (or "all"): re-arm its breaker
}

// failKind classifies how a poll ended, for the scheduler.
type failKind int

const (
	failOther   failKind = iota // network, TLS, protocol: back off and retry
	failBusy                    // [IN-USE], [LOGIN-DELAY], [SYS/TEMP]: back off and retry
	failRefused                 // login refused: counts toward the circuit breaker
	failFatal                   // the spool's state is unknown: fetchd must stop
	failMessage                 // one message broke the connection; the account is not to blame
)

// pollError is an error that has been reported (with its event) and
// classified.
type pollError struct {
	kind failKind
	err  error
}

func (e *pollError) Error() string { return e.err.Error() }
func (e *pollError) Unwrap() error { return e.err }

func classify(err error, kind failKind) error { return &pollError{kind: kind, err: err} }

// kindOf returns the class of a poll's error; unclassified errors are
// failOther.
func kindOf(err error) failKind {
	var pe *pollError
	if errors.As(err, &pe) {
		return pe.kind
	}
	return failOther
}

// afterPoll updates the breaker after a poll of a; loggedIn says whether
// the session got past the login.
func (f *Fetcher) afterPoll(a *config.Account, loggedIn bool, err error) {
	if f.countRefusal(a, loggedIn, err) {
		f.saveBreakers()
	}
}

// countRefusal updates the breaker's count; it reports whether it changed.
func (f *Fetcher) countRefusal(a *config.Account, loggedIn bool, err error) bool {
	st := f.state(a.Name)
	st.mu.Lock()
	defer st.mu.Unlock()
	if loggedIn {
		was := st.refused
		st.refused = 0
		return was != 0
	}
	if kindOf(err) != failRefused {
		return false
	}
	st.refused++
	if st.refused >= breakerTrips && !st.stopped {
		st.stopped, st.stopText, st.stopPrint = true, err.Error(), f.fingerprint(a)
		f.remindStopped(a, st)
	}
	return true
}

// Stopped reports whether the circuit breaker stopped polling account
// name, and the server's refusal.
func (f *Fetcher) Stopped(name string) (bool, string) {
	st := f.state(name)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.stopped, st.stopText
}

// remindStopped logs, every interval while the breaker is open, that the
// account is stopped and why. st.mu is held.
func (f *Fetcher) remindStopped(a *config.Account, st *acctState) {
	event.Emit(&f.Log, event.LoginStopped).Str("account", a.Name).Str("user", a.Username).
		Int("refused", st.refused).Str("server_said", st.stopText).
		Msg(fmt.Sprintf("stopped polling account %s after %d refused logins: %s; fix the password or settings (polling resumes when they change) or, once the provider unlocked the account, press Retrieve Now", a.Name, st.refused, st.stopText))
}

// mayResume is asked, every interval, about a stopped account: it rereads
// the config file and the password, and resumes polling (taking the new
// settings) once the account's settings differ from those that were
// refused. It returns whether the account may be polled.
func (f *Fetcher) mayResume(a *config.Account) bool {
	resumed, ok := f.resume(a)
	if resumed {
		f.saveBreakers()
	}
	return ok
}

// resume is mayResume under the account's lock; resumed says the breaker
// was opened now.
func (f *Fetcher) resume(a *config.Account) (resumed, ok bool) {
	st := f.state(a.Name)
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.stopped {
		return false, true
	}
	fresh := f.freshAccount(a)
	if f.fingerprint(fresh) == st.stopPrint {
		f.remindStopped(a, st)
		return false, false
	}
	*a = *fresh
	st.stopped, st.refused = false, 0
	event.Emit(&f.Log, event.LoginResumed).Str("account", a.Name).Msg("account settings or password changed; polling again")
	return true, true
}

// freshAccount returns a's settings as the config file says now, or a
// itself when the file cannot be read or no longer has the account (the
// operator sees the error at the next reload or restart).
func (f *Fetcher) freshAccount(a *config.Account) *config.Account {
	if f.Cfg.File == "" {
		return a
	}
	cfg, err := config.Load(f.Cfg.File)
	if err != nil {
		return a
	}
	if fresh, ok := cfg.AccountNamed(a.Name); ok {
		return fresh
	}
	return a
}

// fingerprint identifies an account's settings and its current password
// or token file (hashed), so that fixing either one resumes a stopped
// account.
func fingerprint(a *config.Account) string {
	b, err := json.Marshal(a)
	if err != nil {
		panic(fmt.Sprintf("account settings not serialisable: %v", err)) // broken invariant: plain data
	}
	h := sha256.New()
	h.Write(b)
	// An unreadable password or token file counts as a change when it
	// becomes readable. A token_command or password_command is not run:
	// it may cost a secret store's round trip or a prompt, and a token's
	// output changes with every refresh.
	var secret []byte
	switch {
	case !a.OAuth() && a.PasswordCommand == "":
		pass, _ := a.Secret()
		secret = []byte(pass)
	case a.TokenFile != "":
		secret, _ = os.ReadFile(a.TokenFile)
	}
	h.Write([]byte{0})
	h.Write(secret)
	return hex.EncodeToString(h.Sum(nil))
}

// state returns the state of account name, creating it on first use.
func (f *Fetcher) state(name string) *acctState {
	m := f.mem
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.states[name]
	if !ok {
		st = &acctState{}
		m.states[name] = st
	}
	return st
}
