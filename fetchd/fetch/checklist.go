package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/journal"
	"example.org/popspool/shared/spool"
)

// CheckList is Check followed by a dry run of the next poll ("fetchd
// check -list"): after STAT it asks for the listings and says, for each
// message on the server, what the next poll would do with it: fetch it
// (new), delete it again or keep it (fetched before), leave it there (too
// big, or set aside after failed downloads). It reads the account's UIDL
// journal in the spool without opening it for writing, downloads nothing
// (TOP only for a server without UIDL, as a poll does) and deletes
// nothing, so it may run while fetchd does.
func CheckList(ctx context.Context, a *config.Account, spoolRoot string, out io.Writer, log zerolog.Logger) bool {
	return check(ctx, a, spoolRoot, out, log, func(ck *checker) bool { return ck.list(spoolRoot) })
}

// planned is what the next poll would do with one listed message.
type planned struct {
	m    message
	what string // new, fetched, kept, stub, too big, set aside
	note string
}

func (ck *checker) list(spoolRoot string) bool {
	path := filepath.Join(spoolRoot, spool.State, ck.a.Name+".uidl")
	recs, _, err := journal.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		recs, err = nil, nil // nothing fetched yet
	}
	if err != nil {
		return ck.failed("list", event.SpoolIO, err.Error(), "check that this user may read the spool's state/ folder")
	}
	j := &uidls{}
	j.load(recs)
	ctx, cut := context.WithCancelCause(ck.ctx)
	defer cut(nil)
	stop := context.AfterFunc(ctx, func() { ck.conn.Close() })
	defer stop()
	s := &session{f: &Fetcher{Log: zerolog.Nop(), mem: NewMemory()}, a: ck.a, c: ck.c, cut: cut, j: j}
	msgs, err := s.listing()
	if err != nil {
		return ck.failed("list", event.ProtocolError, err.Error(), "the listing failed; try again later or report it to the provider")
	}
	plan := make([]planned, 0, len(msgs))
	for _, m := range msgs {
		plan = append(plan, s.plan(m))
	}
	ck.printPlan(plan, s.partial)
	return true
}

// plan says what the next poll would do with m, by the rules of one().
func (s *session) plan(m message) planned {
	rec, known := s.j.seen[m.uidl]
	n := s.j.attempts[m.uidl]
	switch {
	case known && rec.stub && s.tooBig(m):
		return planned{m, "stub", fmt.Sprintf("too big; its header went to the recipient %s, the message stays on the server", ago(rec.at))}
	case known && rec.stub:
		return planned{m, "new", "only its header was stored; max_size has grown, so it is fetched whole"}
	case known && s.deleteKnown(rec):
		return planned{m, "fetched", fmt.Sprintf("fetched %s as %s; deleted on the server by the next poll", ago(rec.at), rec.id)}
	case known:
		return planned{m, "kept", fmt.Sprintf("fetched %s as %s; kept on the server (keep)", ago(rec.at), rec.id)}
	case s.tooBig(m) && s.a.Oversize == "headers":
		return planned{m, "too big", fmt.Sprintf("over max_size %d: its header and a notice go to the recipient, the message stays", int64(s.a.MaxSize))}
	case s.tooBig(m):
		return planned{m, "too big", fmt.Sprintf("over max_size %d: left on the server (event %d)", int64(s.a.MaxSize), event.TooBig)}
	case n >= attemptLimit:
		return planned{m, "set aside", fmt.Sprintf("%d failed downloads: not tried until Retrieve Now (event %d)", n, event.MessageSetAside)}
	case n > 0:
		return planned{m, "new", fmt.Sprintf("%d failed downloads so far; tried after the others", n)}
	}
	return planned{m, "new", ""}
}

func ago(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04") + " UTC"
}

// printPlan writes one line per message and a total line per kind.
func (ck *checker) printPlan(plan []planned, partial bool) {
	total := map[string]int{}
	octets := map[string]int64{}
	var kinds []string
	if len(plan) > 0 {
		fmt.Fprintf(ck.out, "  %6s %10s  %-9s  %s\n", "msg", "octets", "next poll", "uidl hash")
	}
	for _, p := range plan {
		if total[p.what] == 0 {
			kinds = append(kinds, p.what)
		}
		total[p.what]++
		octets[p.what] += p.m.size
		line := fmt.Sprintf("  %6d %10d  %-9s  %s", p.m.num, p.m.size, p.what, uidlHash(p.m.uidl))
		if p.note != "" {
			line += "  " + p.note
		}
		fmt.Fprintln(ck.out, line)
	}
	sum := ""
	for _, k := range kinds {
		sum += fmt.Sprintf(", %d %s (%d octets)", total[k], k, octets[k])
	}
	if sum == "" {
		sum = ", nothing on the server"
	}
	ck.ok("list", "%d %s%s; nothing was downloaded or deleted", len(plan), plural(len(plan), "message", "messages"), sum)
	if partial {
		fmt.Fprintf(ck.out, "  %-10s the server lists more than max_listing (%d): only the first ones are shown, as a poll takes them (event %d)\n", "list:", ck.a.MaxListing, event.ListingCut)
	}
}
