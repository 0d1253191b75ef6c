package admin

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/status"
)

// now is the clock; tests set it.
var now = time.Now

// Queue lists the messages of cfg's spool that pass f, oldest first: one
// line each and a total line, or, with asJSON, one JSON object (Entry)
// per line and no total, as postqueue -j does. It reads only the top of
// each file and changes nothing.
func Queue(cfg *config.Config, f Filter, asJSON bool, w io.Writer) error {
	entries, scanned, err := Entries(cfg, f)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(w, entries)
	}
	return writeTable(w, entries, scanned, len(cfg.Targets) > 0)
}

// Entries returns the messages that pass f, oldest first, and how many
// messages the folders f looked at hold in all.
func Entries(cfg *config.Config, f Filter) (entries []Entry, scanned int, err error) {
	if err := f.checkFolders(); err != nil {
		return nil, 0, err
	}
	root, err := spoolRoot(cfg)
	if err != nil {
		return nil, 0, err
	}
	files, err := list(root, &f)
	if err != nil {
		return nil, 0, err
	}
	t := now()
	all := scan(root, files, t)
	for i := range all {
		all[i].Target = targetOf(cfg, all[i].Target, all[i].Account, len(all[i].Recipients) > 0)
	}
	for i := range all {
		if f.match(&all[i], t) {
			entries = append(entries, all[i])
		}
	}
	slices.SortStableFunc(entries, func(a, b Entry) int {
		return cmp.Or(a.Fetched.Compare(b.Fetched), strings.Compare(a.ID, b.ID))
	})
	return entries, len(all), nil
}

// targetOf is the name of the delivery target a message will use: the
// one its X-Popspool-Target line names; for a routed file without the
// line, config.DefaultTarget; for one not routed yet, its account's (the
// only account's, when it names none), or "" when that is not known.
func targetOf(cfg *config.Config, named, account string, routed bool) string {
	switch {
	case named != "":
		return named
	case routed:
		return config.DefaultTarget
	}
	if a, ok := cfg.AccountNamed(strings.TrimSpace(account)); ok {
		return a.TargetOf()
	}
	if len(cfg.Account) == 1 {
		return cfg.Account[0].TargetOf()
	}
	return ""
}

// spoolRoot is the config's spool, which must exist.
func spoolRoot(cfg *config.Config) (string, error) {
	if cfg == nil || cfg.Spool == "" {
		return "", fmt.Errorf("the config names no spool")
	}
	fi, err := os.Stat(cfg.Spool)
	if err != nil {
		return "", fmt.Errorf("spool: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("spool %s is not a folder", cfg.Spool)
	}
	return cfg.Spool, nil
}

func writeJSON(w io.Writer, entries []Entry) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, e := range entries {
		for _, l := range []*[]string{&e.Recipients, &e.Originals, &e.HeaderTo, &e.Notes} {
			if *l == nil {
				*l = []string{} // the same type in every object
			}
		}
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// where is the WHERE column: the folder, and "held" for a held message.
func where(e *Entry) string {
	if e.Held {
		return e.Where + ",held"
	}
	return e.Where
}

// writeTable writes the listing; with targets (the config has
// [target.NAME] tables) a TARGET column follows ACCOUNT.
func writeTable(w io.Writer, entries []Entry, scanned int, targets bool) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	t := now()
	account := func(e *Entry) string { return dash(e.Account) }
	head := "ACCOUNT"
	if targets {
		account = func(e *Entry) string { return dash(e.Account) + "\t" + dash(e.Target) }
		head = "ACCOUNT\tTARGET"
	}
	if len(entries) > 0 {
		fmt.Fprintln(tw, "ID\tWHERE\tAGE\tSIZE\t"+head+"\tSENDER\tRECIPIENTS\tTRIES\tNEXT\tLAST ERROR OR REASON")
	}
	for i := range entries {
		e := &entries[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, where(e), status.Age(t.Sub(e.Fetched)),
			Size(e.Size), account(e), senderText(e), rcptText(e), tries(e.Attempts), next(e.NextAttempt, t), reason(e))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(bw, total(entries, scanned))
	return bw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func senderText(e *Entry) string {
	switch {
	case e.SenderSource == "":
		return "-"
	case e.SenderSource != "X-Sender":
		return "(" + dash(e.Sender) + ")" // not routed yet: what the header says
	}
	return "<" + e.Sender + ">"
}

func rcptText(e *Entry) string {
	list := e.Recipients
	if len(list) == 0 {
		if len(e.HeaderTo) == 0 {
			return "-"
		}
		return "(to " + short(e.HeaderTo) + ")"
	}
	return short(list)
}

// short joins a list, naming at most two and counting the rest.
func short(list []string) string {
	if len(list) <= 2 {
		return strings.Join(list, ",")
	}
	return fmt.Sprintf("%s,%s,+%d", list[0], list[1], len(list)-2)
}

func tries(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func next(at, t time.Time) string {
	switch {
	case at.IsZero():
		return "-"
	case !at.After(t):
		return "due"
	}
	return "in " + status.Age(at.Sub(t))
}

// reason is the last column: why the message is where it is.
func reason(e *Entry) string {
	var parts []string
	switch {
	case e.Error != "":
		parts = append(parts, "unreadable: "+e.Error)
	case e.Downloading:
		parts = append(parts, "being downloaded")
	case e.Failed != "":
		parts = append(parts, "set aside: "+e.Failed)
	case e.LastError != "":
		parts = append(parts, e.LastError)
	}
	for _, n := range e.Notes {
		parts = append(parts, "[note: "+n+"]")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// total is the last line: how many messages and bytes are listed, by
// place, and of how many the folders hold when a filter left some out.
func total(entries []Entry, scanned int) string {
	var size int64
	count := map[string]int{}
	for _, e := range entries {
		size += e.Size
		count[e.Where]++
	}
	var by []string
	for _, p := range places {
		if count[p] > 0 {
			by = append(by, fmt.Sprintf("%s %d", p, count[p]))
		}
	}
	s := fmt.Sprintf("-- %d message(s), %s", len(entries), Size(size))
	if len(by) > 0 {
		s += ": " + strings.Join(by, ", ")
	}
	if len(entries) != scanned {
		s += fmt.Sprintf(" (%d in the folders looked at; the filter left out %d)", scanned, scanned-len(entries))
	}
	return s + " --"
}

// Size formats a byte count as an operator reads it: 512 B, 4.0 KB, 2.3 MB.
func Size(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KB", float64(n)/1024)
	case n < 1024*1024*1024:
		return fmt.Sprintf("%.1f MB", float64(n)/(1024*1024))
	}
	return fmt.Sprintf("%.1f GB", float64(n)/(1024*1024*1024))
}
