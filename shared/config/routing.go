package config

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Routing says where an account's messages go: single-drop (DeliverTo:
// every message to these addresses) or multi-drop (the recipients are read
// from the envelope headers the ISP left, kept if in LocalDomains).
type Routing struct {
	DeliverTo       []string          `toml:"deliver_to"`
	LocalDomains    []string          `toml:"local_domains"`
	EnvelopeHeaders []string          `toml:"envelope_headers"`
	ToCcFallback    *bool             `toml:"to_cc_fallback"`
	Aliases         map[string]string `toml:"aliases"`
	UnroutedTo      string            `toml:"unrouted_to"`
}

// DefaultEnvelopeHeaders is the order in which multi-drop routing looks
// for the recipient: Delivered-To first (RFC 9228), then the headers other
// MTAs use, then the "for <...>" clause of the newest Received field.
var DefaultEnvelopeHeaders = []string{"Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "Received"}

// MultiDrop reports whether the account routes by envelope headers.
func (r *Routing) MultiDrop() bool { return len(r.LocalDomains) > 0 }

// UseToCc reports whether To and Cc are consulted when no envelope header
// names a local recipient (default yes, never for list mail).
func (r *Routing) UseToCc() bool { return r.ToCcFallback == nil || *r.ToCcFallback }

// envelopeSpecRe: a header name, optionally ":first", ":last", ":all" or
// ":N" (the Nth occurrence from the top, 1-based; the top is the newest).
// Without a suffix the topmost occurrence naming a local address is taken.
var envelopeSpecRe = regexp.MustCompile(`^([A-Za-z0-9-]+)(?::(first|last|all|[1-9][0-9]?))?$`)

// ParseEnvelopeSpec splits an envelope_headers entry. which is "first",
// "last", "all", a number, or "" for the default: the topmost occurrence
// that names an address in local_domains (after aliases).
func ParseEnvelopeSpec(s string) (name, which string, ok bool) {
	m := envelopeSpecRe.FindStringSubmatch(s)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

func (a *Account) validateRouting(p *problems, key string) {
	r := &a.Routing
	switch {
	case len(r.DeliverTo) > 0 && r.MultiDrop():
		p.add(key+".deliver_to", "set deliver_to (single-drop) or local_domains (multi-drop), not both")
	case len(r.DeliverTo) == 0 && !r.MultiDrop():
		p.add(key+".deliver_to", "missing: the local address(es) this mailbox's mail goes to, or local_domains for a multi-drop mailbox")
	}
	for _, addr := range r.DeliverTo {
		if !ValidAddress(addr) {
			p.add(key+".deliver_to", "%q is not an address like alice@contoso.local", addr)
		}
	}
	for _, d := range r.LocalDomains {
		if d == "" || strings.ContainsAny(d, "@ \t<>") {
			p.add(key+".local_domains", "%q is not a domain like contoso.local", d)
		}
	}
	if len(r.EnvelopeHeaders) == 0 {
		r.EnvelopeHeaders = DefaultEnvelopeHeaders
	}
	for _, h := range r.EnvelopeHeaders {
		if _, _, ok := ParseEnvelopeSpec(h); !ok {
			p.add(key+".envelope_headers", "%q is not a header name, optionally with :first, :last, :all or :N", h)
		}
	}
	if r.UnroutedTo != "" && !ValidAddress(r.UnroutedTo) {
		p.add(key+".unrouted_to", "%q is not an address", r.UnroutedTo)
	}
	if (r.UnroutedTo != "" || len(r.Aliases) > 0) && !r.MultiDrop() {
		p.add(key+".unrouted_to", "unrouted_to and aliases need local_domains (multi-drop)")
	}
	for from, to := range r.Aliases {
		if !ValidAddress(from) && !(strings.HasPrefix(from, "@") && len(from) > 1) {
			p.add(key+".aliases", "%q is not an address or @domain", from)
		}
		if !ValidAddress(to) {
			p.add(key+".aliases", "%q (for %q) is not an address", to, from)
		}
	}
}

// Filter is rewrited's filtering: block and allow lists for senders and
// recipients, a loop guard, and an optional external filter command.
type Filter struct {
	BlockSenders        []string `toml:"block_senders"`
	BlockSendersFile    string   `toml:"block_senders_file"`
	AllowSenders        []string `toml:"allow_senders"`
	AllowSendersFile    string   `toml:"allow_senders_file"`
	BlockRecipients     []string `toml:"block_recipients"`
	BlockRecipientsFile string   `toml:"block_recipients_file"`
	AllowRecipients     []string `toml:"allow_recipients"`
	AllowRecipientsFile string   `toml:"allow_recipients_file"`
	MaxHops             int      `toml:"max_hops"`
	Command             []string `toml:"command"`
	Timeout             Duration `toml:"timeout"`
	Action              string   `toml:"action"`
	TagHeader           string   `toml:"tag_header"`
	Duplicates                   // drop_duplicates, duplicate_window, duplicate_keep_days: duplicates.go
}

var headerNameRe = regexp.MustCompile(`^[A-Za-z0-9-]+$`)

func (f *Filter) defaults() {
	if f.MaxHops == 0 {
		f.MaxHops = 3
	}
	if f.Timeout == 0 {
		f.Timeout = Duration(30 * time.Second)
	}
	if f.Action == "" {
		f.Action = "tag"
	}
	if f.TagHeader == "" {
		f.TagHeader = "X-Popspool-Filter"
	}
	f.Duplicates.defaults()
}

func (f *Filter) validate(p *problems) {
	for key, list := range map[string][]string{"filter.block_senders": f.BlockSenders, "filter.allow_senders": f.AllowSenders,
		"filter.block_recipients": f.BlockRecipients, "filter.allow_recipients": f.AllowRecipients} {
		for _, e := range list {
			if _, err := ParseListEntry(e); err != nil {
				p.add(key, "%v", err)
			}
		}
	}
	for key, file := range map[string]string{"filter.block_senders_file": f.BlockSendersFile, "filter.allow_senders_file": f.AllowSendersFile,
		"filter.block_recipients_file": f.BlockRecipientsFile, "filter.allow_recipients_file": f.AllowRecipientsFile} {
		if file == "" {
			continue
		}
		if _, err := ReadListFile(file); err != nil {
			p.add(key, "%v", err)
		}
	}
	if f.MaxHops < 1 || f.MaxHops > 100 {
		p.add("filter.max_hops", "must be between 1 and 100")
	}
	if f.Timeout.D() <= 0 {
		p.add("filter.timeout", "must be positive")
	}
	if !oneOf(f.Action, "tag", "fail") {
		p.add("filter.action", "%q is not tag or fail", f.Action)
	}
	if !headerNameRe.MatchString(f.TagHeader) {
		p.add("filter.tag_header", "%q is not a header name", f.TagHeader)
	}
	f.Duplicates.validate(p)
}

// ParseListEntry normalises a block or allow list entry: an address
// ("bob@example.net") or a whole domain ("@example.net" or "example.net"),
// lower-cased. Domains come back with their "@".
func ParseListEntry(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case ValidAddress(s):
		return s, nil
	case strings.HasPrefix(s, "@") && len(s) > 1 && !strings.ContainsAny(s[1:], "@ \t<>"):
		return s, nil
	case s != "" && !strings.ContainsAny(s, "@ \t<>,;"):
		return "@" + s, nil
	}
	return "", fmt.Errorf("%q is not an address or a domain", s)
}

// ReadListFile reads a list file: one address or domain per line; blank
// lines and lines starting with # are ignored. Errors name the line.
func ReadListFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := ParseListEntry(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%s: %v", path, strconv.Itoa(i+1), err)
		}
		out = append(out, e)
	}
	return out, nil
}
