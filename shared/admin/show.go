package admin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/spool"
)

// ErrUnknown means show found the id nowhere: in no folder, no daemon's
// hands, the delivery ledger nor any UIDL journal.
var ErrUnknown = errors.New("no such message")

// copyOf is one file of the message in the spool.
type copyOf struct {
	place, path string
	size        int64
	top         *top
	err         error
}

// story is everything the spool knows of one message.
type story struct {
	cfg      *config.Config
	root, id string
	copies   []copyOf
	fetch    []fetchRecord
	ledger   [][]string
	dsnFor   [][]string
	deaths   []string
	actions  []string // operators' commands on it (status/actions.log)
	problems []string // records that could not be read
	noLedger bool
}

// Show prints what the spool, the journals and the ledger know of the
// message id (a spool id, or the name of a file in a spool folder): its
// top lines, then its history from the download through the routing to
// each delivery attempt. It changes nothing. An id found nowhere is an
// error for which errors.Is(err, ErrUnknown) holds.
func Show(cfg *config.Config, id string, w io.Writer) error {
	root, err := spoolRoot(cfg)
	if err != nil {
		return err
	}
	s := &story{cfg: cfg, root: root, id: strings.TrimSuffix(filepath.Base(id), ".eml")}
	if s.id == "" || s.id == "." {
		return fmt.Errorf("show: no message id given")
	}
	s.gather()
	if len(s.copies) == 0 && len(s.fetch) == 0 && len(s.ledger) == 0 && len(s.dsnFor) == 0 && len(s.actions) == 0 {
		return fmt.Errorf("%s: %w in %s: not in any folder or a daemon's hands, nor in the delivery ledger or a UIDL journal (the ledger forgets delivered messages after 14 days, a UIDL journal forgets a message once the server no longer lists it)", s.id, ErrUnknown, root)
	}
	s.write(w)
	return nil
}

func (s *story) gather() {
	s.copies = locate(s.root, s.id)
	var err error
	s.ledger, s.dsnFor, err = ledgerRecords(s.root, s.id)
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.noLedger = true
	case err != nil:
		s.problems = append(s.problems, err.Error())
	}
	if spool.ValidID(s.id) {
		var probs []string
		s.fetch, probs = findFetch(s.root, s.id)
		s.problems = append(s.problems, probs...)
		s.deaths = suspectDeaths(s.root, s.id)
		s.actions = actionsOn(s.root, s.id)
	}
}

// locate finds every file of id: <id>.eml and same-id copies
// (<id>-N.eml) in each place, fetchd's <id>.part, or, for a name that is
// not an id, the file of that name.
func locate(root, id string) []copyOf {
	var out []copyOf
	for _, p := range places {
		dir := filepath.Join(root, filepath.FromSlash(p))
		var names []string
		if spool.ValidID(id) {
			names = []string{id + ".eml", id + ".part", HoldPrefix + id + ".eml"}
			more, _ := filepath.Glob(filepath.Join(dir, id+"-*.eml"))
			for _, m := range more {
				names = append(names, filepath.Base(m))
			}
		} else {
			names = []string{id, id + ".eml"}
		}
		for _, n := range names {
			if !listed(p, n, false) {
				continue
			}
			if c, ok := readCopy(p, filepath.Join(dir, n)); ok {
				out = append(out, c)
			}
		}
	}
	return out
}

func readCopy(place, path string) (copyOf, bool) {
	c := copyOf{place: place, path: path}
	f, err := spool.OpenFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, false
	}
	if err != nil {
		c.err = err
		return c, true
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		c.size = fi.Size()
	}
	c.top, c.err = readTop(f, true)
	return c, true
}

func (s *story) write(w io.Writer) {
	p := &printer{w: w}
	s.head(p)
	for _, c := range s.copies {
		s.topLines(p, c)
	}
	s.download(p)
	s.routing(p)
	s.delivery(p)
	if len(s.actions) > 0 {
		p.section("operators' commands (status/actions.log)")
		for _, a := range s.actions {
			p.line("%s", a)
		}
	}
	if len(s.deaths) > 0 {
		p.section("crashes while handling it (suspect books)")
		for _, d := range s.deaths {
			p.line("%s", d)
		}
	}
	if len(s.problems) > 0 {
		p.section("records that could not be read")
		for _, pr := range s.problems {
			p.line("%s", pr)
		}
	}
}

// printer writes show's sections.
type printer struct{ w io.Writer }

func (p *printer) section(title string) { fmt.Fprintf(p.w, "\n%s\n", title) }
func (p *printer) line(format string, args ...any) {
	fmt.Fprintf(p.w, "  "+format+"\n", args...)
}

func (s *story) head(p *printer) {
	fmt.Fprintf(p.w, "message %s\n", s.id)
	if spool.ValidID(s.id) {
		p.line("id made %s (by fetchd as the download began; by deliverd, for a DSN it wrote)", stamp(spool.IDTime(s.id)))
	}
	if len(s.copies) == 0 {
		p.line("not in the spool now: no folder and no daemon's hands hold it")
	}
	for _, c := range s.copies {
		p.line("in %s: %s, %s — %s", c.place, c.path, Size(c.size), meaning(c.place, c.path))
	}
	if len(s.copies) > 1 {
		p.line("more than one copy: a crash or an operator's copy; deliverd's ledger sends the id once")
	}
	for _, c := range s.copies {
		if c.top != nil {
			p.line("%s", s.targetText(c.top))
			break
		}
	}
}

// targetText says which delivery target deliverd will use for the file.
func (s *story) targetText(t *top) string {
	name := targetOf(s.cfg, t.env.Target, t.first["x-popspool-account"], len(t.env.Receivers) > 0)
	if name == "" {
		return "delivery target: not known before routing (no known account); rewrited decides"
	}
	d, ok := s.cfg.DeliverFor(name)
	if !ok {
		return fmt.Sprintf("delivery target %s: not in the config; deliverd defers it (event 4041) until [target.%s] is added or the X-Popspool-Target line corrected", name, name)
	}
	from := "its X-Popspool-Target line"
	switch {
	case t.env.Target == "" && len(t.env.Receivers) > 0:
		from = "no X-Popspool-Target line"
	case t.env.Target == "":
		from = "its account's target, once routed"
	}
	return fmt.Sprintf("delivery target %s: %s (%s)", name, d.Target, from)
}

// meaning says what it means for a message to be in place.
func meaning(place, path string) string {
	switch {
	case strings.HasSuffix(path, ".part"):
		return "fetchd is downloading it"
	case place == spool.Incoming:
		return "fetched, waiting for rewrited to route it"
	case place == "tmp/rewrited":
		return "rewrited is routing it"
	case place == spool.Pickup:
		return "routed, waiting for deliverd"
	case place == "tmp/deliverd":
		return "deliverd is delivering it"
	case place == spool.Deferred:
		return "delivery failed for now; deliverd retries it on schedule"
	case place == spool.Failed:
		return "rewrited could not route it; set aside for you"
	case place == spool.Badmail:
		return "delivery failed for good; set aside for you"
	}
	return ""
}

func (s *story) topLines(p *printer, c copyOf) {
	p.section("top lines of " + c.path + " (the body is not shown)")
	if c.err != nil {
		p.line("unreadable: %v", c.err)
	}
	if c.top == nil {
		return
	}
	for _, l := range c.top.envRaw {
		p.line("%s", l)
	}
	for _, f := range c.top.fields {
		p.line("%s: %s", f.name, f.value)
	}
	for _, n := range c.top.notes {
		p.line("note: %s", n)
	}
}

// ownTrace parses the Received field fetchd adds (fetch.traceHeader).
var ownTrace = regexp.MustCompile(`^from (\S+)\s+by (\S+) \(popspool fetchd; account ([^;]*); uidl ([^)]*)\)\s+with (\S+) id (\S+);\s*(.*)$`)

// trace is what fetchd's Received field says.
type trace struct{ server, account, uidl, proto, when string }

func (s *story) traces() []trace {
	var out []trace
	for _, c := range s.copies {
		if c.top == nil {
			continue
		}
		for _, v := range c.top.values("Received") {
			if m := ownTrace.FindStringSubmatch(v); m != nil {
				out = append(out, trace{m[1], m[3], percentDecode(m[4]), m[5], m[7]})
				break // the topmost is fetchd's; older ones are the ISP's
			}
		}
	}
	return out
}

// percentDecode undoes fetchd's commentSafe (%XX for bytes that could
// end a header comment).
func percentDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+3], "%02X", &c); err == nil {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
