package status

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"example.org/popspool/shared/spool"
)

// Thresholds of Report: a file waiting longer than Waiting in incoming/
// or pickup/ means the next daemon is not taking it; an error younger
// than Recent is listed under "needs attention".
const (
	Waiting = 10 * time.Minute
	Recent  = time.Hour
)

// Input is what Report looks at.
type Input struct {
	Root      string    // the spool
	Accounts  []string  // from the config; nil: those fetchd's status knows
	ConfigErr error     // the config could not be loaded (Root came from a lenient read)
	Now       time.Time // zero: time.Now()
}

// what says what each queue folder holds, for the folder table.
var what = map[string]string{
	spool.Incoming:   "fetched, waiting for rewrited",
	spool.Pickup:     "routed, waiting for deliverd",
	spool.Deferred:   "delivery failed for now; deliverd retries on schedule",
	spool.Failed:     "could not be routed; the first line says why (for you)",
	spool.Badmail:    "delivery failed for good (for you)",
	spool.Duplicates: "copies a recipient already had, kept a few days (rewrited's duplicate filter, event 3025)",
}

// Report prints the state of the spool at in.Root and of its three
// daemons as tables an operator reads at a glance, then what needs
// attention, each item with its event number. It returns how many items
// need attention.
func Report(w io.Writer, in Input) int {
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	r := &report{in: in, files: map[string]*File{}, errs: map[string]error{}}
	for _, d := range spool.Daemons {
		r.files[d], r.errs[d] = Load(in.Root, d)
	}
	if in.ConfigErr != nil {
		r.attend("the config has errors; the daemons will not start (again) with it:\n    %s", strings.ReplaceAll(in.ConfigErr.Error(), "\n", "\n    "))
	}
	fmt.Fprintf(w, "popspool status, %s, spool %s\n\n", in.Now.Format("2006-01-02 15:04:05 MST"), in.Root)
	r.daemons(w)
	r.folders(w)
	r.accounts(w)
	r.last(w)
	return len(r.todo)
}

type report struct {
	in    Input
	files map[string]*File
	errs  map[string]error
	todo  []string
}

func (r *report) attend(format string, args ...any) {
	r.todo = append(r.todo, fmt.Sprintf(format, args...))
}

func (r *report) ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return Age(r.in.Now.Sub(t)) + " ago"
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func (r *report) daemons(w io.Writer) {
	tw := table(w)
	fmt.Fprintln(tw, "DAEMON\tSTATE\tUP\tPID\tLAST ACTIVITY\tLAST ERROR\tVERSION")
	for _, d := range spool.Daemons {
		f := r.files[d]
		if f == nil {
			state := "NO STATUS"
			if !errors.Is(r.errs[d], os.ErrNotExist) {
				state = "UNREADABLE"
			}
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\n", d, state)
			r.attend("%s: %s", d, r.missing(d))
			continue
		}
		state, running := r.state(f)
		up, lastErr := "-", "-"
		if running {
			up = Age(r.in.Now.Sub(f.Started))
		}
		if e := f.LastError; e != nil {
			lastErr = fmt.Sprintf("%d, %s", e.Event, r.ago(e.Time))
			if r.in.Now.Sub(e.Time) < Recent && e.Account == "" {
				r.attend("%s: %s", d, r.problem(e))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d, state, up, f.PID, r.ago(f.LastActivity), lastErr, f.Version)
	}
	tw.Flush()
	fmt.Fprintln(w)
}

func (r *report) missing(d string) string {
	if errors.Is(r.errs[d], os.ErrNotExist) {
		return fmt.Sprintf("no status file (%s): it has not run as a service on this spool (%s)", Path(r.in.Root, d), serviceHint(d))
	}
	return r.errs[d].Error()
}

// state says what f means now, and whether the daemon runs.
func (r *report) state(f *File) (string, bool) {
	d := f.Daemon
	switch {
	case f.State == "stopped":
		r.attend("%s was stopped %s (%s)", d, r.ago(f.Stopped), serviceHint(d))
		return "stopped", false
	case f.State == "failed":
		why := ""
		if f.LastError != nil {
			why = ": " + r.problem(f.LastError)
		}
		r.attend("%s stopped on an error %s%s", d, r.ago(f.Stopped), why)
		return "FAILED", false
	case r.in.Now.Sub(f.Updated) > Stale:
		r.attend("%s is not running: its status was last updated %s; it was killed or crashed (%s)", d, r.ago(f.Updated), serviceHint(d))
		return "STALE", false
	}
	return f.State, true
}

func (r *report) problem(e *Problem) string {
	s := fmt.Sprintf("%d %s (%s)", e.Event, e.Name, r.ago(e.Time))
	if e.Name == "" {
		s = fmt.Sprintf("%d %s (%s)", e.Event, e.Message, r.ago(e.Time))
	}
	if e.Error != "" {
		s += ": " + e.Error
	}
	return s
}

func (r *report) folders(w io.Writer) {
	scan := Scan(r.in.Root)
	tw := table(w)
	fmt.Fprintln(tw, "FOLDER\tFILES\tOLDEST\tHOLDS")
	for _, q := range Queues {
		f, ok := scan[q]
		if !ok {
			fmt.Fprintf(tw, "%s/\t-\t-\tMISSING or unreadable\n", q)
			r.attend("%s/ is missing or unreadable in %s", q, r.in.Root)
			continue
		}
		oldest := "-"
		if f.Files > 0 {
			oldest = Age(r.in.Now.Sub(f.Oldest))
		}
		fmt.Fprintf(tw, "%s/\t%d\t%s\t%s\n", q, f.Files, oldest, what[q])
		r.folderAttention(q, f)
	}
	tw.Flush()
	fmt.Fprintln(w)
}

func (r *report) folderAttention(q string, f Folder) {
	if f.Files == 0 {
		return
	}
	age := r.in.Now.Sub(f.Oldest)
	switch q {
	case spool.Incoming, spool.Pickup:
		if age > Waiting {
			next := map[string]string{spool.Incoming: "rewrited", spool.Pickup: "deliverd"}[q]
			r.attend("%s/: %d file(s), the oldest waiting %s: %s is not taking them", q, f.Files, Age(age), next)
		}
	case spool.Deferred:
		r.attend("deferred/: %d message(s) not delivered yet; X-Popspool-Last-Error in each says why (mv deferred/<id>.eml pickup/ retries now)", f.Files)
	case spool.Failed:
		r.attend("failed/: %d file(s) rewrited could not route; X-Popspool-Failed, the first line, says why", f.Files)
	case spool.Badmail:
		r.attend("badmail/: %d message(s) deliverd gave up on; X-Popspool-Last-Error says why", f.Files)
	}
}

func (r *report) accounts(w io.Writer) {
	var known map[string]*Account
	if f := r.files["fetchd"]; f != nil {
		known = f.Accounts
	}
	names := r.in.Accounts
	if names == nil {
		for n := range known {
			names = append(names, n)
		}
		slices.Sort(names)
	}
	if len(names) == 0 {
		return
	}
	tw := table(w)
	fmt.Fprintln(tw, "ACCOUNT\tLAST POLL\tRESULT")
	for _, n := range names {
		a := known[n]
		result := "not polled since fetchd started"
		if a != nil {
			result = r.accountResult(n, a)
		}
		last := "-"
		if a != nil {
			last = r.ago(a.LastPoll)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n, last, result)
	}
	tw.Flush()
	fmt.Fprintln(w)
}

func (r *report) accountResult(name string, a *Account) string {
	return r.pollResult(name, a) + r.setAside(name, a)
}

func (r *report) pollResult(name string, a *Account) string {
	if e := a.LastError; e != nil && e.Time.After(a.LastOK) {
		r.attend("account %s: %s", name, r.problem(e))
		return fmt.Sprintf("FAILED: %d %s", e.Event, e.Name)
	}
	if a.LastPoll.IsZero() {
		return "not polled since fetchd started"
	}
	return fmt.Sprintf("ok, %d fetched (%d since start)", a.Fetched, a.Total)
}

// setAside is the note on messages fetchd set aside (event 2032), and
// what to do about them.
func (r *report) setAside(name string, a *Account) string {
	if a.SetAside == 0 {
		return ""
	}
	what := "1 message on the server cannot be downloaded"
	if a.SetAside > 1 {
		what = fmt.Sprintf("%d messages on the server cannot be downloaded", a.SetAside)
	}
	r.attend("account %s: %s (event 2032, the log names each); they stay on the server. Once the provider has mended them, touch control/retrieve-now.%s to try them again", name, what, name)
	return "; " + what
}

func (r *report) last(w io.Writer) {
	if len(r.todo) == 0 {
		fmt.Fprintln(w, "Nothing needs attention.")
		return
	}
	fmt.Fprintln(w, "NEEDS ATTENTION")
	for _, t := range r.todo {
		fmt.Fprintln(w, "- "+t)
	}
	fmt.Fprintln(w, "Event numbers are explained in docs/events.md; docs/operations.md has the troubleshooting steps.")
}

// serviceHint says where to look at the service of daemon d.
func serviceHint(d string) string {
	if runtime.GOOS == "windows" {
		return "sc query popspool-" + d + "; start it with: " + d + " service start"
	}
	return "systemctl status popspool-" + d
}

// Age formats d for people: 42s, 5m, 2h3m, 3d4h.
func Age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// Summary is one line for systemd's STATUS=: the daemon's state, the
// queue folders, and the last error.
func (f *File) Summary() string {
	var b strings.Builder
	b.WriteString(f.State)
	for i, q := range Queues {
		sep := ", "
		if i == 0 {
			sep = "; "
		}
		c, ok := f.Folders[q]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "%s%s %d", sep, q, c.Files)
		if age := time.Since(c.Oldest); c.Files > 0 && age >= time.Minute {
			fmt.Fprintf(&b, " (oldest %s)", Age(age))
		}
	}
	if e := f.LastError; e != nil {
		fmt.Fprintf(&b, "; last error %d at %s", e.Event, e.Time.Local().Format("Jan 2 15:04"))
	}
	return b.String()
}
