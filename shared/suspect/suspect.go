// Package suspect keeps the evidence against a file that may kill the
// daemon handling it (issue 11.2 and 11.3): a message that makes rewrited
// or deliverd crash, be killed by the kernel for its memory, or die of a
// fatal runtime error would otherwise come back at every start and block
// the mail behind it, while a quarantine on weaker evidence (two restarts
// that happened to find the file in hand) puts good mail in failed/.
//
// The evidence is counted only where it means something. A daemon that
// restarts with several files in hand cannot tell which one killed it, so
// it handles them again one at a time, and before each writes a durable
// "alone" record to its book (state/<daemon>.suspects); when that file is
// done the record is cleared. An "alone" record that a start finds not
// cleared is one death of the daemon while that file, and no other, was in
// its hands. After Limit such deaths in a row the file is set aside with
// the count and the times in its reason. Deaths the process sees itself (a
// panic, a deadline) need no count: the daemons quarantine at once.
//
// The book is a journal (shared/journal): records "A id unix-seconds"
// (alone, from then on), "C id" (cleared) and "N id t1,t2,..." (deaths
// carried over), compacted to N records at every start.
package suspect

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/event"
	"example.org/popspool/shared/journal"
)

// Limit is how many deaths in a row while a file was handled alone set it
// aside. One is what any kill -9, power cut or OOM kill of an unrelated
// cause can produce; two is what the kill storm of issue 11.2 produced; a
// file that kills the daemon every time reaches three in three restarts,
// which systemd's default start limit (5 in 10 s) and a supervisor's back-off
// both allow, while three unrelated deaths inside the same few milliseconds
// of work after three restarts are not seen in practice.
const Limit = 3

// Book is a daemon's open record of suspects.
type Book struct {
	j      *journal.Journal
	path   string
	deaths map[string][]time.Time // id -> unseen deaths while it was alone
	alone  map[string]bool        // ids with an A record of this run not cleared
	now    func() time.Time
}

// Open reads the book at path (creating it), counts a death for every
// file left alone without being cleared (event 1024), and compacts it.
func Open(path string, log *zerolog.Logger) (*Book, error) {
	j, recs, _, err := journal.Open(path)
	if err != nil {
		return nil, fmt.Errorf("suspects: %w", err)
	}
	j.Damage().Report(log)
	b := &Book{path: path, deaths: map[string][]time.Time{}, alone: map[string]bool{}, now: time.Now}
	open := map[string]time.Time{}
	for _, r := range recs {
		b.replay(r, open)
	}
	for _, id := range slices.Sorted(maps.Keys(open)) {
		b.deaths[id] = append(b.deaths[id], open[id])
		n := len(b.deaths[id])
		event.Emit(log, event.SuspectDeath).Str("id", id).Int("deaths", n).Int("limit", Limit).
			Time("since", open[id]).Msg("the daemon died while handling this file alone")
	}
	j.Close()
	if err := journal.Rewrite(path, b.records()); err != nil {
		return nil, fmt.Errorf("suspects: %w", err)
	}
	if b.j, _, _, err = journal.Open(path); err != nil {
		return nil, fmt.Errorf("suspects: %w", err)
	}
	return b, nil
}

// replay applies one record; open collects the A records not cleared.
// Records it does not know (a newer version's) are ignored.
func (b *Book) replay(r []string, open map[string]time.Time) {
	switch {
	case len(r) == 3 && r[0] == "A":
		sec, err := strconv.ParseInt(r[2], 10, 64)
		if err == nil {
			open[r[1]] = time.Unix(sec, 0)
		}
	case len(r) == 2 && r[0] == "C":
		delete(open, r[1])
		delete(b.deaths, r[1])
	case len(r) == 3 && r[0] == "N":
		var ts []time.Time
		for f := range strings.SplitSeq(r[2], ",") {
			if sec, err := strconv.ParseInt(f, 10, 64); err == nil {
				ts = append(ts, time.Unix(sec, 0))
			}
		}
		b.deaths[r[1]] = ts
	}
}

func (b *Book) records() [][]string {
	var out [][]string
	for _, id := range slices.Sorted(maps.Keys(b.deaths)) {
		ts := make([]string, 0, len(b.deaths[id]))
		for _, t := range b.deaths[id] {
			ts = append(ts, strconv.FormatInt(t.Unix(), 10))
		}
		out = append(out, []string{"N", id, strings.Join(ts, ",")})
	}
	return out
}

// Deaths returns the deaths counted against id, oldest first.
func (b *Book) Deaths(id string) []time.Time { return b.deaths[id] }

// Suspects returns the ids with deaths counted, the most deaths first.
func (b *Book) Suspects() []string {
	ids := slices.Sorted(maps.Keys(b.deaths))
	slices.SortStableFunc(ids, func(x, y string) int { return len(b.deaths[y]) - len(b.deaths[x]) })
	return ids
}

// Alone records durably that id is now handled on its own: a death before
// Clear counts against it at the next start.
func (b *Book) Alone(id string) error {
	if err := b.j.Append("A", id, strconv.FormatInt(b.now().Unix(), 10)); err != nil {
		return fmt.Errorf("suspects: %w", err)
	}
	if err := b.j.Sync(); err != nil {
		return fmt.Errorf("suspects: %w", err)
	}
	b.alone[id] = true
	return nil
}

// Clear records that id was handled to the end (delivered, moved on, set
// aside or put back for an error the daemon saw): the evidence against it
// is dropped, for a file that can be handled is no poison.
func (b *Book) Clear(id string) error {
	if !b.alone[id] && len(b.deaths[id]) == 0 {
		return nil // nothing recorded against it
	}
	if err := b.j.Append("C", id); err != nil {
		return fmt.Errorf("suspects: %w", err)
	}
	if err := b.j.Sync(); err != nil {
		return fmt.Errorf("suspects: %w", err)
	}
	delete(b.deaths, id)
	delete(b.alone, id)
	return nil
}

// Close closes the book.
func (b *Book) Close() error { return b.j.Close() }

// Reason is the line a set-aside file carries: who died, how often, when.
func Reason(daemon string, deaths []time.Time) string {
	ts := make([]string, 0, len(deaths))
	for _, t := range deaths {
		ts = append(ts, t.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("%s died %d times in a row while handling this file alone (%s)", daemon, len(deaths), strings.Join(ts, ", "))
}
