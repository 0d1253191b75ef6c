// Package ledger is deliverd's delivery ledger (DESIGN.md, notes/
// reliability.md §8.5): an append-only journal in state/deliverd.ledger
// that records, per message id, that a delivery attempt started (S), which
// recipients were accepted (R), that the message was delivered (D), and
// that the outcome of an attempt was unknown (W: the connection was lost
// after the final dot, RFC 1047). An id recorded as delivered is never sent
// again, so a copy resurrected by a crash costs a log line, not a duplicate.
package ledger

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"example.org/popspool/shared/journal"
	"example.org/popspool/shared/spool"
)

// Retention is how long a delivered id is remembered: longer than any copy
// a crash could bring back.
const Retention = 14 * 24 * time.Hour

// Ledger is the open journal and its in-memory index.
type Ledger struct {
	j         *journal.Journal
	path      string
	delivered map[string]bool
	started   map[string]int             // attempt of an S without outcome
	tried     map[string]bool            // any S: an earlier attempt may have delivered
	accepted  map[string]map[string]bool // recipients already delivered
	Windows   int                        // W records: unknown outcomes seen
	Torn      int64                      // bytes of a torn tail cut at Open
}

// Open reads the ledger at path and compacts it when it has grown.
func Open(path string) (*Ledger, error) {
	j, recs, torn, err := journal.Open(path)
	if err != nil {
		return nil, err
	}
	l := &Ledger{j: j, path: path, Torn: torn, delivered: map[string]bool{},
		started: map[string]int{}, tried: map[string]bool{}, accepted: map[string]map[string]bool{}}
	for _, r := range recs {
		l.apply(r)
	}
	if live := len(l.delivered) + len(l.started); len(recs) > 1000 && len(recs) > 2*live {
		return l, l.compact()
	}
	return l, nil
}

func (l *Ledger) apply(r []string) {
	if len(r) < 2 {
		return
	}
	id := r[1]
	switch r[0] {
	case "S":
		n := 1
		if len(r) > 2 {
			n, _ = strconv.Atoi(r[2])
		}
		l.started[id] = n
		l.tried[id] = true
	case "D":
		l.delivered[id] = true
		delete(l.started, id)
		delete(l.tried, id)
		delete(l.accepted, id)
	case "R":
		if len(r) > 2 {
			if b, err := hex.DecodeString(r[2]); err == nil {
				l.markAccepted(id, string(b))
			}
		}
	case "F":
		delete(l.started, id)
	case "W":
		l.Windows++
		delete(l.started, id)
	}
}

func (l *Ledger) markAccepted(id, rcpt string) {
	m := l.accepted[id]
	if m == nil {
		m = map[string]bool{}
		l.accepted[id] = m
	}
	m[strings.ToLower(rcpt)] = true
}

// Delivered reports whether id was delivered to all its recipients.
func (l *Ledger) Delivered(id string) bool { return l.delivered[id] }

// Accepted reports whether rcpt already accepted message id.
func (l *Ledger) Accepted(id, rcpt string) bool { return l.accepted[id][strings.ToLower(rcpt)] }

// Unfinished reports whether an attempt for id started and has no outcome.
func (l *Ledger) Unfinished(id string) bool {
	_, ok := l.started[id]
	return ok
}

// Tried reports whether an earlier attempt to send id started, so it may
// have reached the target.
func (l *Ledger) Tried(id string) bool { return l.tried[id] }

// Start records, durably, that an attempt is about to send id.
func (l *Ledger) Start(id string, attempt int) error {
	return l.commit([]string{"S", id, strconv.Itoa(attempt)})
}

// Accept records recipients that took the message, when others did not.
func (l *Ledger) Accept(id string, rcpts []string) error {
	recs := make([][]string, 0, len(rcpts))
	for _, r := range rcpts {
		recs = append(recs, []string{"R", id, hex.EncodeToString([]byte(r))})
	}
	return l.commit(recs...)
}

// Done records that id was delivered to every recipient.
func (l *Ledger) Done(id string) error { return l.commit([]string{"D", id}) }

// Fail records a known failure (code: the reply code, or "net").
func (l *Ledger) Fail(id, code string) error { return l.commit([]string{"F", id, code}) }

// Window records an attempt whose outcome is unknown.
func (l *Ledger) Window(id string) error { return l.commit([]string{"W", id}) }

func (l *Ledger) commit(recs ...[]string) error {
	for _, r := range recs {
		if err := l.j.Append(r...); err != nil {
			return err
		}
	}
	if err := l.j.Sync(); err != nil {
		return err
	}
	for _, r := range recs {
		l.apply(r)
	}
	return nil
}

// compact rewrites the ledger with what still matters: delivered ids
// younger than Retention, unfinished attempts and accepted recipients.
func (l *Ledger) compact() error {
	var recs [][]string
	cutoff := time.Now().Add(-Retention)
	for id := range l.delivered {
		if !spool.ValidID(id) || spool.IDTime(id).After(cutoff) {
			recs = append(recs, []string{"D", id})
		} else {
			delete(l.delivered, id)
		}
	}
	for id := range l.tried {
		recs = append(recs, []string{"S", id, strconv.Itoa(max(l.started[id], 1))})
		if _, open := l.started[id]; !open {
			recs = append(recs, []string{"F", id, "compacted"})
		}
	}
	for id, m := range l.accepted {
		for r := range m {
			recs = append(recs, []string{"R", id, hex.EncodeToString([]byte(r))})
		}
	}
	l.j.Close()
	if err := journal.Rewrite(l.path, recs); err != nil {
		return fmt.Errorf("compact ledger: %w", err)
	}
	j, _, _, err := journal.Open(l.path)
	l.j = j
	return err
}

// Close closes the journal.
func (l *Ledger) Close() error { return l.j.Close() }
