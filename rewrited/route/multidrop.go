package route

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/emersion/go-message/textproto"

	"example.org/popspool/shared/config"
)

// multiDrop finds the local recipients of a message in a mailbox that
// holds mail for a whole domain. The envelope headers are tried in the
// configured order; the first that names a local address decides. Only if
// none does, To and Cc are read — except for list mail, whose To names the
// list, not the recipient, so that every local address in it would get a
// copy (a classic fetchmail multi-drop complaint).
func multiDrop(rt *config.Routing, h textproto.Header, r *Route) {
	for _, spec := range rt.EnvelopeHeaders {
		name, which, _ := config.ParseEnvelopeSpec(spec)
		vals := ownTraceRemoved(name, h.Values(name))
		if len(vals) == 0 {
			r.note("%s: not present", spec)
			continue
		}
		var got []rcpt
		if which == "" {
			got = topmostLocal(rt, name, vals, r)
		} else {
			got = chosen(rt, spec, name, vals, which, r)
		}
		if len(got) > 0 {
			r.take(got)
			return
		}
	}
	if list := listID(h); list != "" {
		r.note("list mail (%s): To and Cc name the list, not used", list)
		return
	}
	if !rt.UseToCc() {
		r.note("to_cc_fallback = false: To and Cc not used")
		return
	}
	var fromHeaders []found
	for _, key := range []string{"To", "Cc"} {
		for _, v := range h.Values(key) {
			for _, a := range addresses(v) {
				fromHeaders = append(fromHeaders, found{key, a})
			}
		}
	}
	r.take(local(rt, fromHeaders, r))
}

// topmostLocal is the default choice among the occurrences of one
// envelope header: the topmost (newest) that names a local address after
// aliases. ISPs that deliver a domain into one mailbox often add a field
// for the mailbox itself above the one naming the recipient; below the
// one taken are older hops, such as the address a forwarder received it at.
func topmostLocal(rt *config.Routing, name string, vals []string, r *Route) []rcpt {
	if len(vals) == 1 {
		return local(rt, source(name, vals), r)
	}
	r.note("%s: %d occurrences; taking the topmost that names a local address", name, len(vals))
	for i, v := range vals {
		tag := fmt.Sprintf("%s #%d", name, i+1)
		addrs := source(name, []string{v})
		if len(addrs) == 0 {
			r.note("%s: names no address, passed over", tag)
			continue
		}
		var got []rcpt
		for _, f := range addrs {
			if a, ok := localAddr(rt, f.addr, r); ok {
				got = append(got, rcpt{a, f.addr})
				r.note("%s: %s: local recipient, taken", tag, a)
			} else {
				r.note("%s: %s: not in local_domains, passed over", tag, a)
			}
		}
		if len(got) > 0 {
			passedOver(name, vals, i, r)
			return got
		}
	}
	return nil
}

// passedOver notes the older occurrences below the one taken.
func passedOver(name string, vals []string, taken int, r *Route) {
	for j := taken + 1; j < len(vals); j++ {
		for _, f := range source(name, vals[j:j+1]) {
			r.note("%s #%d: %s: not used, #%d above is newer", name, j+1, f.addr, taken+1)
		}
	}
}

// chosen reads the occurrences an explicit :first, :last, :N or :all asks
// for, and only those.
func chosen(rt *config.Routing, spec, name string, vals []string, which string, r *Route) []rcpt {
	picked := pick(vals, which)
	if len(picked) == 0 {
		r.note("%s: %d occurrence(s), none at that position", spec, len(vals))
		return nil
	}
	r.note("%s: %d occurrence(s); reading %d as configured", spec, len(vals), len(picked))
	return local(rt, source(name, picked), r)
}

type found struct{ header, addr string }

// mailboxAddress is the address the first envelope header present names
// (its topmost occurrence, or the one an entry's suffix picks), "" if none.
func mailboxAddress(specs []string, h textproto.Header) string {
	for _, spec := range specs {
		name, which, _ := config.ParseEnvelopeSpec(spec)
		vals := ownTraceRemoved(name, h.Values(name))
		if which != "" {
			vals = pick(vals, which)
		}
		if f := source(name, vals); len(f) > 0 {
			return f[0].addr
		}
	}
	return ""
}

// rcpt is a local recipient and the address it was found as, before
// aliases: the original recipient deliverd sends as ORCPT (RFC 3461).
type rcpt struct{ addr, original string }

// OwnTrace marks the Received field fetchd adds; it names no recipient.
const OwnTrace = "(popspool fetchd;"

func ownTraceRemoved(name string, vals []string) []string {
	if !strings.EqualFold(name, "Received") {
		return vals
	}
	var out []string
	for _, v := range vals {
		if !strings.Contains(v, OwnTrace) {
			out = append(out, v)
		}
	}
	return out
}

// pick selects the occurrences an envelope_headers entry asks for. The
// first value is the topmost field, the one added last.
func pick(vals []string, which string) []string {
	if len(vals) == 0 {
		return nil
	}
	switch which {
	case "first":
		return vals[:1]
	case "last":
		return vals[len(vals)-1:]
	case "all":
		return vals
	}
	n, _ := strconv.Atoi(which)
	if n < 1 || n > len(vals) {
		return nil
	}
	return vals[n-1 : n]
}

// receivedFor finds the "for <addr>" clause of a Received field (RFC 5321
// §4.4).
var receivedFor = regexp.MustCompile(`(?i)\bfor\s+<?([^\s<>;]+@[^\s<>;]+?)>?\s*;`)

func source(name string, vals []string) []found {
	var out []found
	for _, v := range vals {
		if strings.EqualFold(name, "Received") {
			if m := receivedFor.FindStringSubmatch(v); m != nil {
				out = append(out, found{name, m[1]})
			}
			continue
		}
		for _, a := range addresses(v) {
			out = append(out, found{name, a})
		}
	}
	return out
}

// local keeps the addresses in local_domains, after aliases.
func local(rt *config.Routing, in []found, r *Route) []rcpt {
	var out []rcpt
	for _, f := range in {
		addr, ok := localAddr(rt, f.addr, r)
		if !ok {
			r.note("%s: %s: not in local_domains, dropped", f.header, addr)
			continue
		}
		r.note("%s: %s: local recipient", f.header, addr)
		out = append(out, rcpt{addr, f.addr})
	}
	return out
}

// localAddr applies aliases and says whether the result is local.
func localAddr(rt *config.Routing, addr string, r *Route) (string, bool) {
	addr = alias(rt, addr, r)
	return addr, isLocal(rt, addr)
}

func alias(rt *config.Routing, addr string, r *Route) string {
	lower := strings.ToLower(addr)
	for from, to := range rt.Aliases {
		if strings.ToLower(from) == lower {
			r.note("alias %s -> %s", addr, to)
			return to
		}
	}
	if at := strings.LastIndexByte(lower, '@'); at >= 0 {
		for from, to := range rt.Aliases {
			if strings.ToLower(from) == lower[at:] {
				r.note("alias %s -> %s (domain alias %s)", addr, to, from)
				return to
			}
		}
	}
	return addr
}

func isLocal(rt *config.Routing, addr string) bool {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return false
	}
	domain := strings.ToLower(addr[at+1:])
	for _, d := range rt.LocalDomains {
		if strings.ToLower(d) == domain {
			return true
		}
	}
	return false
}

// listID says whether a message is list or bulk mail, and by which header.
func listID(h textproto.Header) string {
	for _, k := range []string{"List-Id", "List-Post", "Mailing-List"} {
		if h.Has(k) {
			return k
		}
	}
	switch p := strings.ToLower(strings.TrimSpace(h.Get("Precedence"))); p {
	case "list", "bulk", "junk":
		return "Precedence: " + p
	}
	return ""
}
