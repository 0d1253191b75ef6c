package admin

import (
	"fmt"
	"slices"
	"strings"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/spool"
)

// download tells where and when the message was fetched: from fetchd's
// Received field in the file and its record in the account's UIDL
// journal.
func (s *story) download(p *printer) {
	p.section("1. download (fetchd)")
	tr := s.traces()
	for _, t := range tr {
		p.line("Received field: from server %s, account %s, UIDL %s, over %s, at %s", t.server, t.account, t.uidl, t.proto, t.when)
	}
	for _, f := range s.fetch {
		what := "downloaded whole"
		if f.stub {
			what = "over max_size: only its header and a notice were stored; the message stays on the server"
		}
		p.line("UIDL journal %s: account %s, UIDL %s, recorded %s, %s", f.journal, f.account, f.uidl, stamp(f.at), what)
	}
	if len(s.fetch) == 0 && spool.ValidID(s.id) {
		p.line("no UIDL journal in state/ has a record of it: fetchd forgets a message at the first poll after the server stopped listing it (after DELE); the Received field, where the file still exists, keeps the UIDL")
	}
	if len(tr) == 0 && len(s.copies) > 0 {
		p.line("the file has no Received field of popspool fetchd: it was not fetched by fetchd (a DSN deliverd made, or a file put in by hand)")
	}
	for _, name := range s.accounts() {
		a, ok := s.cfg.AccountNamed(name)
		if !ok {
			p.line("account %s is not in the config (any more)", name)
			continue
		}
		p.line("account %s in the config: server %s, tls %s, keep %v", a.Name, a.Server, a.TLS, a.Keep)
	}
}

// accounts are the account names the records and the file give.
func (s *story) accounts() []string {
	var out []string
	add := func(n string) {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, f := range s.fetch {
		add(f.account)
	}
	for _, c := range s.copies {
		if c.top != nil {
			add(c.top.first["x-popspool-account"])
		}
	}
	return out
}

// routing tells what rewrited decided: the envelope lines it wrote, and
// for each recipient, the header field that named it.
func (s *story) routing(p *printer) {
	p.section("2. routing (rewrited)")
	c, ok := s.routedCopy()
	switch {
	case len(s.copies) == 0:
		p.line("the file is gone and its envelope lines with it: the recipients are recorded nowhere else in the spool (the log's \"message routed\" line has them)")
		return
	case !ok:
		p.line("not routed yet (%s)", s.copies[0].place)
		return
	case c.place == spool.Failed:
		p.line("set aside in failed/: X-Popspool-Failed: %s (event number, then the reason; docs/events.md)", c.top.env.Failed)
		return
	}
	env := c.top.env
	from := "X-Sender"
	if !env.HasSender {
		from = "no X-Sender line"
	}
	p.line("sender <%s> (%s)", env.Sender, from)
	acct, _ := s.cfg.AccountNamed(c.top.first["x-popspool-account"])
	for _, r := range env.Receivers {
		p.line("recipient <%s>: %s", r, s.why(c.top, acct, r, env.Originals[r]))
	}
	if len(env.Receivers) == 0 {
		p.line("no X-Receiver line: deliverd moves such a file to badmail/")
	}
	if c.place == spool.Deferred || c.place == spool.Badmail {
		p.line("(in %s the X-Receiver lines are those still to retry or that failed; deliverd rewrites them after each attempt)", c.place)
	}
	p.line("rewrited's decision trace is not recorded; `rewrited explain %s` replays it with the config as it is now", c.path)
}

// routedCopy is the first copy that went through rewrited.
func (s *story) routedCopy() (copyOf, bool) {
	for _, c := range s.copies {
		if c.top == nil {
			continue
		}
		switch c.place {
		case spool.Pickup, "tmp/deliverd", spool.Deferred, spool.Badmail, spool.Failed:
			return c, true
		}
	}
	return copyOf{}, false
}

// why says where a recipient came from: deliver_to, unrouted_to, or the
// header field whose value names the address it was found as (the
// X-Receiver line's ORCPT).
func (s *story) why(t *top, acct *config.Account, rcpt, orig string) string {
	var b strings.Builder
	switch {
	case acct == nil:
		b.WriteString("account not in the config; cannot tell the rule")
	case slices.ContainsFunc(acct.DeliverTo, func(a string) bool { return strings.EqualFold(a, rcpt) }):
		fmt.Fprintf(&b, "deliver_to of single-drop account %s", acct.Name)
	case acct.UnroutedTo != "" && strings.EqualFold(acct.UnroutedTo, rcpt) && orig == "":
		fmt.Fprintf(&b, "unrouted_to of account %s: no local recipient was found", acct.Name)
	case acct.MultiDrop():
		fmt.Fprintf(&b, "multi-drop account %s", acct.Name)
	default:
		fmt.Fprintf(&b, "not in deliver_to of single-drop account %s (the config changed since, or the line was edited)", acct.Name)
	}
	look := orig
	if look == "" {
		look = rcpt
	} else if !strings.EqualFold(orig, rcpt) {
		fmt.Fprintf(&b, "; original recipient %s (ORCPT), rewritten by an alias or deliver_to", orig)
	}
	if h := namedIn(t, acct, look); h != "" {
		fmt.Fprintf(&b, "; %s is in the header field %s", look, h)
	} else if orig != "" || acct == nil || acct.MultiDrop() {
		fmt.Fprintf(&b, "; no header field in the top %d KiB names %s", topLimit>>10, look)
	}
	return b.String()
}

// namedIn returns the first header field, in the order routing reads
// them (the account's envelope_headers, then To and Cc), whose value
// holds addr.
func namedIn(t *top, acct *config.Account, addr string) string {
	order := config.DefaultEnvelopeHeaders
	if acct != nil && len(acct.EnvelopeHeaders) > 0 {
		order = acct.EnvelopeHeaders
	}
	for _, spec := range append(slices.Clone(order), "To", "Cc") {
		name, _, _ := config.ParseEnvelopeSpec(spec)
		if name == "" {
			name = spec
		}
		for i, v := range t.values(name) {
			if strings.EqualFold(name, "Received") && strings.Contains(v, "(popspool fetchd;") {
				continue
			}
			if strings.Contains(strings.ToLower(v), strings.ToLower(addr)) {
				return fmt.Sprintf("%s (occurrence %d from the top)", name, i+1)
			}
		}
	}
	return ""
}

// delivery tells each attempt the ledger recorded and what the file says
// of the last one.
func (s *story) delivery(p *printer) {
	p.section("3. delivery (deliverd)")
	if s.noLedger {
		p.line("no delivery ledger (state/%s): deliverd has not run on this spool", ledgerFile)
	}
	for _, r := range s.dsnFor {
		p.line("this message is a delivery status notification deliverd made for message %s, recipient %s", r[1], rcptName(r[4]))
		break
	}
	as := attempts(s.ledger)
	for _, a := range as {
		label := "attempt " + a.n
		if a.n == "" {
			label = "before any recorded start"
		}
		if len(a.outcomes) == 0 {
			p.line("%s: started; no outcome recorded (in progress, or deliverd stopped during it: it is retried)", label)
		}
		for _, o := range a.outcomes {
			p.line("%s: %s", label, o)
		}
	}
	if len(as) > 0 {
		p.line("the ledger records no times and no reply texts; the reply to the last attempt is in X-Popspool-Last-Error while the file exists")
	}
	s.fileState(p)
	p.line("outcome: %s", s.outcome())
}

// fileState prints what the file's state lines say of the attempts.
func (s *story) fileState(p *printer) {
	c, ok := s.routedCopy()
	if !ok || c.place == spool.Failed {
		return
	}
	env := c.top.env
	if env.Attempts > 0 {
		p.line("X-Popspool-Attempts: %d", env.Attempts)
	}
	if !env.NextAttempt.IsZero() {
		p.line("X-Popspool-Next-Attempt: %s", stamp(env.NextAttempt))
	}
	if env.LastError != "" {
		p.line("X-Popspool-Last-Error (the last attempt's reply): %s", env.LastError)
	}
}

// outcome sums up where the delivery stands.
func (s *story) outcome() string {
	if delivered(s.ledger) {
		if len(s.copies) > 0 {
			return "delivered (ledger D record); the copy still in the spool is removed without sending it again (event 4005)"
		}
		return "delivered (ledger D record); the time of delivery is not recorded outside the log"
	}
	places := map[string]bool{}
	for _, c := range s.copies {
		places[c.place] = true
	}
	switch {
	case places[spool.Badmail]:
		return "failed for good: in badmail/" + s.dsnNote() + " (once the cause is fixed, mv badmail/" + s.id + ".eml pickup/ sends it again)"
	case places[spool.Deferred]:
		return "not delivered yet: deferred, retried at X-Popspool-Next-Attempt" + s.dsnNote() + " (mv deferred/" + s.id + ".eml pickup/ retries now)"
	case places["tmp/deliverd"]:
		return "being delivered now"
	case places[spool.Pickup]:
		if len(s.ledger) > 0 {
			return "waiting in pickup/ for another attempt"
		}
		return "not attempted yet: waiting in pickup/"
	case places[spool.Failed]:
		return "never handed to deliverd: in failed/ (once the cause is fixed, mv failed/" + s.id + ".eml incoming/ routes it again)"
	case len(s.copies) > 0:
		return "not routed yet, so not attempted"
	}
	return "not in the spool and not recorded as delivered: removed by an operator, or its ledger records were compacted away"
}

// dsnNote names the DSNs the ledger recorded for the message.
func (s *story) dsnNote() string {
	var ids []string
	for _, r := range s.ledger {
		if r[0] == "F" && len(r) >= 5 && !slices.Contains(ids, r[3]) {
			ids = append(ids, r[3])
		}
	}
	if len(ids) == 0 {
		return ""
	}
	return "; delivery status notification(s) " + strings.Join(ids, ", ") + " sent (show each id for its own delivery)"
}
