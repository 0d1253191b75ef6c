package admin

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// RetrieveNow is the Connector Manager's "Retrieve Now": it asks fetchd to
// poll every account, or the one named, at once, by the control file
// fetchd watches (control/retrieve-now, control/retrieve-now.<account>).
// rearm also resumes accounts stopped after refused logins (2021), which a
// plain request leaves stopped; the request for one account always does.
// It waits up to wait for fetchd to take the request and says whether it
// did: fetchd removes the file within a second or so when it runs.
func (a *Actions) RetrieveNow(cfg *config.Config, account string, rearm bool, wait time.Duration) (taken bool, err error) {
	name, content := "retrieve-now", ""
	switch {
	case account != "":
		if _, ok := cfg.AccountNamed(account); !ok {
			return false, fmt.Errorf("%s: no account named %q", cfg.File, account)
		}
		name += "." + account
	case rearm:
		content = "all\n"
	}
	dir := a.s.Dir(spool.Control)
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d", name, os.Getpid()))
	if err := os.WriteFile(tmp, []byte(content), 0o640); err != nil {
		return false, err
	}
	path := filepath.Join(dir, name)
	if err := os.Rename(tmp, path); err != nil { // a request already waiting is the same request
		os.Remove(tmp)
		return false, err
	}
	event.Emit(&a.log, event.AdminRetrieve).Str("account", account).Bool("rearm", rearm || account != "").Msg("retrieve-now")
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); os.IsNotExist(err) {
			fmt.Fprintf(a.out, "fetchd took the request (%s): it polls now\n", name)
			return true, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(a.out, "asked for with control/%s; fetchd has not taken it within %s: is it running? (it takes it when it starts)\n", name, wait)
	return false, nil
}
