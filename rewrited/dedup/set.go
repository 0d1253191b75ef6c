// Package dedup is rewrited's optional duplicate filter ([filter]
// drop_duplicates): a recipient who already got a message from popspool
// (same Message-ID, envelope sender and body) within the window does not
// get it again, as when the same mail arrives in two fetched mailboxes.
//
// The seen set is an append-only journal, state/rewrited.dedup (shared/
// journal): one record per recipient of each message routed, naming the
// spool id of that copy. A record is written, and fsynced with its batch,
// before the routed file is handed on; a crash in between leaves a record
// for a file that is still in tmp/rewrited/, and when that file is routed
// again its own id is found, so it is not taken for a duplicate of
// itself. Records older than the window are dropped when the journal is
// opened and whenever it is compacted, so the set does not grow without
// bound.
package dedup

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/event"
	"example.org/popspool/shared/journal"
)

// minCompact is how many records must be appended since the last
// compaction before the next one: it amortizes the rewrite.
const minCompact = 4096

// Set is the seen set of one spool.
type Set struct {
	path   string
	fs     journal.FS
	j      *journal.Journal
	window time.Duration
	seen   map[key]first
	// since counts the records appended since the journal was last
	// written whole; at load, the records that were not kept.
	since int
	Now   func() time.Time
}

// first is the copy a recipient got first: its spool id and when.
type first struct {
	id string
	at int64 // Unix seconds
}

// Dup is one recipient of a message dropped as a duplicate.
type Dup struct {
	Rcpt  string
	First string // the spool id of the copy the recipient got
}

// Open reads the journal at path, drops the records older than window
// and compacts the journal when that leaves it much shorter.
func Open(path string, fs journal.FS, window time.Duration, log *zerolog.Logger) (*Set, error) {
	s := &Set{path: path, fs: fs, window: window, Now: time.Now}
	if err := s.load(log); err != nil {
		return nil, err
	}
	if s.due() {
		if err := s.compact(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Set) load(log *zerolog.Logger) error {
	j, records, torn, err := journal.OpenFS(s.path, s.fs)
	if err != nil {
		return fmt.Errorf("duplicate set: %w", err)
	}
	j.Damage().Report(log)
	if torn > 0 {
		event.Emit(log, event.JournalTorn).Str("file", s.path).Int64("bytes", torn).Msg("torn tail of the duplicate set truncated")
	}
	s.j, s.seen = j, make(map[key]first, len(records))
	oldest := s.Now().Add(-s.window).Unix()
	for _, r := range records {
		k, f, ok := decode(r)
		if ok && f.at >= oldest {
			s.seen[k] = f
		}
	}
	s.since = len(records) - len(s.seen)
	return nil
}

// due reports whether enough was appended (or, at load, expired) since
// the last compaction for the next one: at least minCompact records and
// as many as the set holds, so that a compaction's cost, which grows
// with the set, is shared by as many appends, and the set in memory and
// the journal hold at most twice the live entries (plus minCompact).
func (s *Set) due() bool { return s.since >= minCompact && s.since >= len(s.seen)/2 }

// decode reads a record: "S <key hex> <id> <unix seconds>".
func decode(r []string) (key, first, bool) {
	var k key
	if len(r) != 4 || r[0] != "S" || hex.DecodedLen(len(r[1])) != len(k) {
		return k, first{}, false
	}
	if _, err := hex.Decode(k[:], []byte(r[1])); err != nil {
		return k, first{}, false
	}
	at, err := strconv.ParseInt(r[3], 10, 64)
	return k, first{id: r[2], at: at}, err == nil
}

func record(k key, f first) []string {
	return []string{"S", hex.EncodeToString(k[:]), f.id, strconv.FormatInt(f.at, 10)}
}

// Filter splits the recipients of the copy id of a message into those who
// get it (kept, recorded as this copy's, durable at the next Sync) and
// those who already got another copy within the window (dups). A
// recipient recorded under id itself is kept: that is this file routed
// again after a crash or an operator's mv.
func (s *Set) Filter(p Print, id string, rcpts []string) (kept []string, dups []Dup, err error) {
	now := s.Now()
	oldest := now.Add(-s.window).Unix()
	for _, r := range rcpts {
		k := p.key(r)
		f, ok := s.seen[k]
		switch {
		case ok && f.id != id && f.at >= oldest:
			dups = append(dups, Dup{Rcpt: r, First: f.id})
			continue
		case !ok || f.id != id:
			f = first{id: id, at: now.Unix()}
			if err := s.j.Append(record(k, f)...); err != nil {
				return nil, nil, err
			}
			s.seen[k] = f
			s.since++
		}
		kept = append(kept, r)
	}
	return kept, dups, nil
}

// Sync makes the records of Filter durable (one fsync for a batch), then
// compacts the journal when enough has been appended since the last time.
func (s *Set) Sync() error {
	if err := s.j.Sync(); err != nil {
		return fmt.Errorf("duplicate set: %w", err)
	}
	if !s.due() {
		return nil
	}
	return s.compact()
}

// compact drops the expired entries and rewrites the journal with the
// live ones (journal.Rewrite: a new file, fsynced, renamed over the old).
func (s *Set) compact() error {
	oldest := s.Now().Add(-s.window).Unix()
	records := make([][]string, 0, len(s.seen))
	for k, f := range s.seen {
		if f.at < oldest {
			delete(s.seen, k)
			continue
		}
		records = append(records, record(k, f))
	}
	cerr := s.j.Close()
	rerr := journal.RewriteFS(s.path, records, s.fs) // the old journal stays if this fails
	j, _, _, err := journal.OpenFS(s.path, s.fs)
	if err != nil {
		return fmt.Errorf("duplicate set: reopen after compaction: %w", err)
	}
	s.j = j
	if rerr == nil {
		s.since = 0
	}
	if err := errors.Join(cerr, rerr); err != nil {
		return fmt.Errorf("duplicate set: %w", err)
	}
	return nil
}

// Len is the number of recipients remembered.
func (s *Set) Len() int { return len(s.seen) }

// Close closes the journal (after Sync, nothing is lost).
func (s *Set) Close() error { return s.j.Close() }
