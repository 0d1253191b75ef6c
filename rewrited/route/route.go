// Package route decides the envelope of a fetched message: who it is from
// and which local addresses it goes to. Single-drop accounts send every
// message to their deliver_to list; multi-drop accounts (one ISP mailbox
// for a whole domain) read the recipients from the envelope headers the
// ISP left, keep those in local_domains, and apply aliases.
package route

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-message/textproto"

	"example.org/popspool/shared/config"
)

// AccountHeader names the account a message was fetched from; fetchd adds it.
const AccountHeader = "X-Popspool-Account"

// Route is the outcome for one message, with the reasoning behind it.
type Route struct {
	Account    string
	Sender     string // "" for the null sender
	Recipients []string
	Originals  map[string]string // recipient -> address it was found as, for ORCPT; nil if none
	Unrouted   bool              // no recipient found; sent to unrouted_to
	// Target is the account's delivery target ("" for [deliver]'s), for
	// the X-Popspool-Target line.
	Target string
	Trace  []string // one line per decision, for `rewrited explain`
}

func (r *Route) note(format string, args ...any) {
	r.Trace = append(r.Trace, fmt.Sprintf(format, args...))
}

// ErrNoAccount means the message names no known account and the config has
// more than one, so its recipients cannot be decided.
var ErrNoAccount = errors.New("no known X-Popspool-Account header and more than one account configured")

// NoRecipientError is a multi-drop message for which no local recipient
// was found and no unrouted_to is configured.
type NoRecipientError struct{ Trace []string }

func (e *NoRecipientError) Error() string {
	return "no local recipient in the envelope headers, To or Cc, and no unrouted_to set"
}

// Decide routes a message by its header.
func Decide(cfg *config.Config, h textproto.Header) (Route, error) {
	var r Route
	acct, err := account(cfg, h.Get(AccountHeader), &r)
	if err != nil {
		return r, err
	}
	r.Account = acct.Name
	r.Target = acct.Target
	r.noteTarget(cfg, acct)
	r.Sender = sender(h, &r)
	if !acct.MultiDrop() {
		singleDrop(acct, h, &r)
		return r, nil
	}
	multiDrop(&acct.Routing, h, &r)
	r.keepMaildirs(cfg, acct.Target)
	if len(r.Recipients) > 0 {
		return r, nil
	}
	if acct.UnroutedTo == "" {
		r.note("no local recipient and no unrouted_to: the message goes to failed/")
		return r, &NoRecipientError{Trace: r.Trace}
	}
	r.Unrouted = true
	r.Recipients = []string{acct.UnroutedTo}
	r.note("no local recipient: unrouted_to %s", acct.UnroutedTo)
	return r, nil
}

// singleDrop sends the message to deliver_to. The original recipient of
// each copy is the mailbox address the ISP's envelope header names, if one
// does: the topmost occurrence of the first header in envelope_headers
// that names an address.
func singleDrop(acct *config.Account, h textproto.Header, r *Route) {
	orig := mailboxAddress(acct.EnvelopeHeaders, h)
	list := make([]rcpt, len(acct.DeliverTo))
	for i, a := range acct.DeliverTo {
		list[i] = rcpt{a, orig}
	}
	r.take(list)
	r.note("single-drop account %s: deliver_to %s", acct.Name, strings.Join(r.Recipients, ", "))
	if orig != "" {
		r.note("original recipient %s (ORCPT) from the envelope headers", orig)
	}
}

func account(cfg *config.Config, name string, r *Route) (*config.Account, error) {
	name = strings.TrimSpace(name)
	if a, ok := cfg.AccountNamed(name); ok {
		r.note("account %s (from %s)", name, AccountHeader)
		return a, nil
	}
	if len(cfg.Account) == 1 {
		r.note("account %s (the only one configured; %s was %q)", cfg.Account[0].Name, AccountHeader, name)
		return &cfg.Account[0], nil
	}
	if name != "" {
		return nil, fmt.Errorf("account %q in %s is not in the config", name, AccountHeader)
	}
	return nil, ErrNoAccount
}

// sender returns the envelope sender: the Return-Path the ISP recorded,
// else the Sender or From address; "" for the null sender <> (bounces)
// and when none can be parsed.
func sender(h textproto.Header, r *Route) string {
	if rp := strings.TrimSpace(h.Get("Return-Path")); rp != "" {
		addr := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(rp, "<"), ">"))
		if addr == "" || config.ValidAddress(addr) {
			r.note("sender <%s> from Return-Path", addr)
			return addr
		}
		// The ISP recorded an envelope sender that no mail server takes
		// (a control character, a space): using From instead would send
		// bounces to someone the ISP did not name.
		r.note("Return-Path %q is not a valid address (RFC 5321); using the null sender <>", rp)
		return ""
	}
	for _, key := range []string{"Sender", "From"} {
		if list := addresses(h.Get(key)); len(list) > 0 {
			r.note("sender <%s> from %s", list[0], key)
			return list[0]
		}
	}
	r.note("no sender found: using the null sender <>")
	return ""
}

// keepMaildirs passes over, under a maildir:// target, the recipients
// found in the header that have no Maildir and may not get one
// (config.HasMaildir): spam to random local parts of a multi-drop domain
// must not create folders. They count as unknown addresses.
func (r *Route) keepMaildirs(cfg *config.Config, target string) {
	d, _ := cfg.DeliverFor(target)
	key := "deliver.maildir_create"
	if target != "" {
		key = "target." + target + ".maildir_create"
	}
	kept := r.Recipients[:0]
	for _, rc := range r.Recipients {
		if cfg.HasMaildir(target, rc) {
			kept = append(kept, rc)
			continue
		}
		r.note("%s: no Maildir %s, and %s is off: passed over as an unknown address",
			rc, config.MaildirPath(d.MaildirPattern(), rc), key)
		delete(r.Originals, rc)
	}
	r.Recipients = kept
}

// noteTarget says where deliverd will deliver the account's mail.
func (r *Route) noteTarget(cfg *config.Config, acct *config.Account) {
	d, ok := cfg.DeliverFor(acct.Target)
	switch {
	case !ok:
		r.note("delivery target %s (account's target key), which the config does not define", acct.Target)
	case acct.Target == "":
		r.note("delivery target %s: [deliver] target %s (no X-Popspool-Target line)", config.DefaultTarget, d.Target)
	default:
		r.note("delivery target %s: [target.%s] url %s (X-Popspool-Target line)", acct.Target, acct.Target, d.Target)
	}
}

// take sets the recipients, each once (compared case-insensitively), with
// the address each was first found as.
func (r *Route) take(list []rcpt) {
	seen := map[string]bool{}
	for _, rc := range list {
		k := strings.ToLower(rc.addr)
		if seen[k] {
			r.note("%s: duplicate, delivered once", rc.addr)
			continue
		}
		seen[k] = true
		r.Recipients = append(r.Recipients, rc.addr)
		if rc.original == "" {
			continue
		}
		if r.Originals == nil {
			r.Originals = map[string]string{}
		}
		r.Originals[rc.addr] = rc.original
	}
}
