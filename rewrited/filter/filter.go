package filter

import (
	"fmt"
	"strings"

	"github.com/emersion/go-message/textproto"

	"example.org/popspool/shared/config"
)

// Filter holds the lists and settings of the config's [filter] section.
type Filter struct {
	BlockSenders, AllowSenders, BlockRecipients, AllowRecipients *List
	MaxHops                                                      int
	Command                                                      *Command
}

// New makes the filter of a config.
func New(f config.Filter) *Filter {
	out := &Filter{
		BlockSenders:    NewList(f.BlockSenders, f.BlockSendersFile),
		AllowSenders:    NewList(f.AllowSenders, f.AllowSendersFile),
		BlockRecipients: NewList(f.BlockRecipients, f.BlockRecipientsFile),
		AllowRecipients: NewList(f.AllowRecipients, f.AllowRecipientsFile),
		MaxHops:         f.MaxHops,
	}
	if len(f.Command) > 0 {
		out.Command = &Command{Argv: f.Command, Timeout: f.Timeout.D(), Action: f.Action, TagHeader: f.TagHeader}
	}
	return out
}

// Sender checks the envelope sender: an allowed sender passes; a blocked
// one is refused with the matching entry as reason. The null sender (of
// bounces) is never blocked.
func (f *Filter) Sender(addr string) (reason string, ok bool) {
	if addr == "" {
		return "", true
	}
	if _, hit := f.AllowSenders.Match(addr); hit {
		return "", true
	}
	if e, hit := f.BlockSenders.Match(addr); hit {
		return fmt.Sprintf("sender %s is blocked (%s)", addr, e), false
	}
	return "", true
}

// Recipients drops blocked recipients and, when an allow list is set, the
// ones not on it. dropped says which, and why.
func (f *Filter) Recipients(rcpts []string) (kept, dropped []string) {
	restrict := !f.AllowRecipients.Empty()
	for _, r := range rcpts {
		if _, hit := f.AllowRecipients.Match(r); hit {
			kept = append(kept, r)
			continue
		}
		if e, hit := f.BlockRecipients.Match(r); hit {
			dropped = append(dropped, fmt.Sprintf("%s (blocked by %s)", r, e))
			continue
		}
		if restrict {
			dropped = append(dropped, r+" (not on allow_recipients)")
			continue
		}
		kept = append(kept, r)
	}
	return kept, dropped
}

// OwnTrace marks the Received field fetchd adds to every message.
const OwnTrace = "(popspool fetchd;"

// Hops counts how often the message has passed popspool already: its own
// Received fields. More than MaxHops means mail loops (the local server
// sends it back to a fetched mailbox) and must stop.
func (f *Filter) Hops(h textproto.Header) (int, bool) {
	n := 0
	for _, v := range h.Values("Received") {
		if strings.Contains(v, OwnTrace) {
			n++
		}
	}
	return n, n <= f.MaxHops
}
