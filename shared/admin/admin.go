// Package admin is popspool's mailq and postcat: Queue lists every message
// in the spool, one line each, and Show tells one message's story, from
// its download through its routing to each delivery attempt.
//
// Both work from the spool and the config alone, while the daemons run and
// while they are stopped, and change nothing: spool files are opened
// read-only and only their top is read (the envelope lines and the
// header, never the body); the UIDL journals, the delivery ledger and the
// suspect books are read with journal.Read, which never creates,
// truncates, repairs or compacts a log. No lock is taken, so a listing
// made while the daemons work is a snapshot of each folder in turn: a
// message that moves on during it may be listed twice (it is read in
// pipeline order, so it is never missed for moving forward).
package admin

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"example.org/popspool/shared/spool"
)

// Where a message can be: the committed folders, and in a daemon's hands
// (tmp/<daemon>/), in pipeline order.
var places = []string{
	spool.Incoming,
	spool.Tmp + "/fetchd", // only .part files: downloads in progress
	spool.Tmp + "/rewrited",
	spool.Pickup,
	spool.Tmp + "/deliverd",
	spool.Deferred,
	spool.Failed,
	spool.Badmail,
	spool.Duplicates, // dropped by rewrited's duplicate filter, kept for a while
}

// Hand names, in Filter.Folders, every tmp/<daemon>/ folder at once.
const Hand = "hand"

// Filter selects the messages Queue lists. Its zero value selects all.
type Filter struct {
	Folders []string      // places (incoming, pickup, deferred, failed, badmail, tmp/<daemon>, or Hand); none: all
	Account string        // the account the message was fetched from, case-insensitive
	Older   time.Duration // only messages fetched at least this long ago
	Newer   time.Duration // only messages fetched less than this long ago
	Sender  string        // part of the sender address, case-insensitive
	Rcpt    string        // part of a recipient address (or of the original one, or of To/Cc before routing)
	JSON    bool          // set by -json: one JSON object per line, for scripts
}

// QueueFlags registers the queue command's flags on fs and returns the
// Filter they fill in once fs.Parse has run.
func QueueFlags(fs *flag.FlagSet) *Filter {
	f := &Filter{}
	fs.Func("folder", "only messages in these folders, comma-separated: incoming, pickup, deferred, failed, badmail, duplicates, hand (in a daemon's hands)", func(s string) error {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				f.Folders = append(f.Folders, p)
			}
		}
		return f.checkFolders()
	})
	fs.StringVar(&f.Account, "account", "", "only messages fetched from this account")
	fs.DurationVar(&f.Older, "older", 0, "only messages fetched at least this long ago (e.g. 2h)")
	fs.DurationVar(&f.Newer, "newer", 0, "only messages fetched less than this long ago (e.g. 12h)")
	fs.StringVar(&f.Sender, "sender", "", "only messages whose sender address contains this text")
	fs.StringVar(&f.Rcpt, "rcpt", "", "only messages with a recipient address that contains this text")
	fs.BoolVar(&f.JSON, "json", false, "one JSON object per message and line, for scripts (like postqueue -j)")
	return f
}

// checkFolders reports a folder name Filter does not know.
func (f *Filter) checkFolders() error {
	for _, want := range f.Folders {
		ok := want == Hand
		for _, p := range places {
			ok = ok || p == filepath.ToSlash(want) || (want == "tmp" && strings.HasPrefix(p, spool.Tmp+"/"))
		}
		if !ok {
			return fmt.Errorf("-folder %q: not one of incoming, pickup, deferred, failed, badmail, hand, tmp/fetchd, tmp/rewrited, tmp/deliverd", want)
		}
	}
	return nil
}

// wantPlace reports whether the filter lists the messages of place.
func (f *Filter) wantPlace(place string) bool {
	if len(f.Folders) == 0 {
		return true
	}
	for _, want := range f.Folders {
		inHand := strings.HasPrefix(place, spool.Tmp+"/")
		if filepath.ToSlash(want) == place || ((want == Hand || want == "tmp") && inHand) {
			return true
		}
	}
	return false
}

// match reports whether e passes the filter's other conditions.
func (f *Filter) match(e *Entry, now time.Time) bool {
	age := now.Sub(e.Fetched)
	switch {
	case f.Account != "" && !strings.EqualFold(f.Account, e.Account):
		return false
	case f.Older > 0 && age < f.Older:
		return false
	case f.Newer > 0 && age >= f.Newer:
		return false
	case f.Sender != "" && !contains(e.Sender, f.Sender):
		return false
	case f.Rcpt != "" && !e.hasRcpt(f.Rcpt):
		return false
	}
	return true
}

func contains(s, part string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(part))
}

func (e *Entry) hasRcpt(part string) bool {
	for _, list := range [][]string{e.Recipients, e.Originals, e.HeaderTo} {
		for _, r := range list {
			if contains(r, part) {
				return true
			}
		}
	}
	return false
}
