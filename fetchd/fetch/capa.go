package fetch

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"example.org/popspool/fetchd/pop3"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
)

// noteCaps acts on what the server announces about the account after the
// login (RFC 2449 §5: the capabilities may differ per user then; the
// values before the login are the fallback): LOGIN-DELAY for the
// scheduler, EXPIRE against keep and keep_days.
func (s *session) noteCaps(before, after pop3.Caps) {
	delay := after.LoginDelay
	if delay == "" {
		delay = before.LoginDelay
	}
	if d, ok := parseLoginDelay(delay); ok {
		s.f.setLoginDelay(s.a, d)
	}
	expire := after.Expire
	if expire == "" {
		expire = before.Expire
	}
	s.f.checkExpire(s.a, expire)
}

// parseLoginDelay reads "LOGIN-DELAY 900" or, before the login, "900
// USER" (RFC 2449 §6.5: seconds between logins).
func parseLoginDelay(arg string) (time.Duration, bool) {
	f := strings.Fields(arg)
	if len(f) == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 0 || n > 7*24*3600 {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// setLoginDelay remembers the server's minimum time between logins and
// says so when it changes.
func (f *Fetcher) setLoginDelay(a *config.Account, d time.Duration) {
	st := f.state(a.Name)
	st.mu.Lock()
	changed := st.loginDelay != d
	st.loginDelay = d
	st.mu.Unlock()
	if changed && d > 0 {
		event.Emit(&f.Log, event.LoginDelay).Str("account", a.Name).Str("login_delay", d.String()).
			Str("interval", a.Interval.D().String()).Msg("the server allows one login per login_delay; polls wait for it")
	}
}

// loginDelayLeft is how long the next login of account name must still
// wait for the server's LOGIN-DELAY.
func (f *Fetcher) loginDelayLeft(name string) time.Duration {
	st := f.state(name)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.loginDelay == 0 || st.lastLogin.IsZero() {
		return 0
	}
	return max(0, st.loginDelay-time.Since(st.lastLogin))
}

// checkExpire compares the server's EXPIRE (RFC 2449 §6.7: days a
// retrieved message may stay, "NEVER", 0 = none at all) with keep and
// keep_days, and warns once per value when the server deletes first.
func (f *Fetcher) checkExpire(a *config.Account, expire string) {
	problem := expireProblem(a, expire)
	st := f.state(a.Name)
	st.mu.Lock()
	seen := st.expireSeen == expire
	st.expireSeen = expire
	st.mu.Unlock()
	if problem == "" || seen {
		return
	}
	event.Emit(&f.Log, event.ExpireSooner).Str("account", a.Name).Str("expire", expire).
		Bool("keep", a.Keep).Int("keep_days", a.KeepDays).Msg(problem)
}

// expireProblem says how the server's EXPIRE defeats keep/keep_days, or "".
func expireProblem(a *config.Account, expire string) string {
	if !a.Keep {
		return "" // fetchd deletes right after fetching anyway
	}
	f := strings.Fields(expire)
	if len(f) == 0 || strings.EqualFold(f[0], "NEVER") {
		return ""
	}
	days, err := strconv.Atoi(f[0])
	if err != nil || days < 0 {
		return ""
	}
	switch {
	case days == 0:
		return "the server does not keep retrieved mail (EXPIRE 0): keep = true has no effect"
	case a.KeepDays == 0:
		return fmt.Sprintf("the server deletes retrieved mail after %d days (EXPIRE), though keep = true asks to keep it for ever", days)
	case days < a.KeepDays:
		return fmt.Sprintf("the server deletes retrieved mail after %d days (EXPIRE), before keep_days = %d", days, a.KeepDays)
	}
	return ""
}
