// Package ledger is deliverd's delivery ledger (DESIGN.md, notes/
// reliability.md §8.5): an append-only journal in state/deliverd.ledger
// that records, per message id, that a delivery attempt started (S), which
// recipients were accepted (R), that the message was delivered (D), and
// that the outcome of an attempt was unknown (W: the connection was lost
// after the final dot, RFC 1047), that a complete copy was about to be
// renamed into a pickup folder (P), and that it failed (F), with the id of
// the delivery status notification sent for the failed recipients, so a
// crash and a retry never send a second one. An id recorded as delivered
// is never sent again, so a copy resurrected by a crash costs a log line,
// not a duplicate.
//
// The ledger is safe for concurrent use. Records of concurrent callers
// share one fsync (group commit, reliability.md §8.5): each call returns
// only once its own records are durable. Two records are cheaper: the S
// records of a whole claimed group share one fsync (Start), and a D is
// written at once but made durable only by the next commit or Sync
// (Done): a power cut in between costs an unknown outcome that the
// durable S counts, never a loss (docs/crashes.md, "The delivery ledger").
package ledger

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"example.org/popspool/shared/journal"
	"example.org/popspool/shared/spool"
)

// Retention is how long a delivered id is remembered: longer than any copy
// a crash could bring back.
const Retention = 14 * 24 * time.Hour

// Ledger is the open journal and its in-memory index.
type Ledger struct {
	mu        sync.Mutex // guards everything below but syncMu's
	j         *journal.Journal
	path      string
	delivered map[string]bool
	started   map[string]bool              // an S without outcome
	tried     map[string]bool              // any S: an earlier attempt may have delivered
	accepted  map[string]map[string]bool   // recipients already delivered
	bounced   map[string]map[string]string // recipient -> id of the DSN sent for it
	windows   map[string]int               // W records per id: unknown outcomes seen
	placed    map[string]bool              // P: a complete copy was about to be renamed into a pickup folder
	Torn      int64                        // bytes of a torn tail cut at Open
	Damage    journal.Damage               // damaged records skipped at Open
	fs        journal.FS

	// Group commit: records are appended under mu; one caller at a time
	// (holding syncMu) writes and fsyncs everything appended so far.
	syncMu   sync.Mutex
	appended uint64     // calls that appended records
	synced   uint64     // calls whose records are durable
	pending  [][]string // appended, not yet durable (applied after the fsync, a D at once)
	buffered [][]string // appended, not yet written: appended again after a refused write
	broken   error      // a failed write or fsync: the journal is unusable
	Syncs    uint64     // fsyncs done, for the benchmark's figures

	// A write refused for lack of space is tried again every FullPause
	// for up to FullWait (defaults: 1 s, 30 s) before the ledger gives up
	// (ErrBroken): a full disk that frees up soon costs a wait, not an
	// exit and a resend. Every caller waits meanwhile. OnFull, if set, is
	// told of each refusal.
	FullPause, FullWait time.Duration
	OnFull              func(error)

	// Compaction while running (issue 16.5): once the journal holds
	// CompactMin records (default 1000) and twice as many as its last
	// compaction left, it is compacted again after a commit, so its size
	// stays within about twice what still matters. OnCompact, if set, is
	// told of each (err: a full disk, the compaction waits for the next
	// doubling; any other error breaks the ledger).
	CompactMin int
	OnCompact  func(before, after int, err error)
	records    int // records in the journal file
	base       int // records the last compaction (or Open) left
}

// ErrBroken wraps every error after a failed ledger write or fsync: the
// records' fate is unknown (fsyncgate), so the daemon must exit and let
// recovery read what reached the disk.
var ErrBroken = errors.New("delivery ledger unusable after a failed write")

// Open reads the ledger at path and compacts it when it has grown.
func Open(path string) (*Ledger, error) { return OpenFS(path, spool.OS{}) }

// OpenFS is Open through fs (the spool's, so the power-cut model sees the
// ledger's fsyncs with the spool's).
func OpenFS(path string, fs journal.FS) (*Ledger, error) {
	j, recs, torn, err := journal.OpenFS(path, fs)
	if err != nil {
		return nil, err
	}
	l := &Ledger{j: j, path: path, fs: fs, Torn: torn, Damage: j.Damage(), delivered: map[string]bool{},
		started: map[string]bool{}, tried: map[string]bool{}, accepted: map[string]map[string]bool{},
		bounced: map[string]map[string]string{}, windows: map[string]int{}, placed: map[string]bool{}}
	for _, r := range recs {
		l.apply(r)
	}
	l.records, l.base = len(recs), len(recs)
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
	case "S": // S <id>; S <id> <attempt> before issue 12
		l.started[id] = true
		l.tried[id] = true
	case "D":
		l.delivered[id] = true
		delete(l.started, id)
		delete(l.tried, id)
		delete(l.accepted, id)
		delete(l.bounced, id)
		delete(l.placed, id)
	case "P":
		l.placed[id] = true
	case "R":
		if len(r) > 2 {
			if k, ok := fieldKey(r[2]); ok {
				l.markAccepted(id, k)
			}
		}
	case "F": // F <id> <code> [<dsn-id> <rcpt>...]; one rcpt a record since 16.1
		delete(l.started, id)
		if len(r) > 3 {
			for _, f := range r[4:] {
				if k, ok := fieldKey(f); ok {
					l.markBounced(id, k, r[3])
				}
			}
		}
	case "W":
		l.windows[id]++
		delete(l.started, id)
	}
}

// maxPlainRcpt is the longest recipient a record names in hex; a longer
// one (an envelope line may hold 2 KB) is named by its digest, so that
// every record fits in a journal record whatever the recipient.
const maxPlainRcpt = 512

// rcptField is how records and the index name a recipient: the hex of
// the address in lower case, or "~" and the hex SHA-256 of it when it is
// longer than maxPlainRcpt. Hex never starts with "~".
func rcptField(rcpt string) string {
	lower := strings.ToLower(rcpt)
	if len(lower) <= maxPlainRcpt {
		return hex.EncodeToString([]byte(lower))
	}
	sum := sha256.Sum256([]byte(lower))
	return "~" + hex.EncodeToString(sum[:])
}

// fieldKey is the index key of a recipient field read from the journal
// (older records hold the hex of the address as given).
func fieldKey(f string) (string, bool) {
	if strings.HasPrefix(f, "~") {
		return f, true
	}
	b, err := hex.DecodeString(f)
	if err != nil {
		return "", false
	}
	return rcptField(string(b)), true
}

func (l *Ledger) markBounced(id, key, dsnID string) {
	m := l.bounced[id]
	if m == nil {
		m = map[string]string{}
		l.bounced[id] = m
	}
	m[key] = dsnID
}

func (l *Ledger) markAccepted(id, key string) {
	m := l.accepted[id]
	if m == nil {
		m = map[string]bool{}
		l.accepted[id] = m
	}
	m[key] = true
}

// Delivered reports whether id was delivered to all its recipients.
func (l *Ledger) Delivered(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.delivered[id]
}

// Accepted reports whether rcpt already accepted message id.
func (l *Ledger) Accepted(id, rcpt string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.accepted[id]
	return m != nil && m[rcptField(rcpt)] // most ids have none: no field to make
}

// Unfinished reports whether an attempt for id started and has no outcome.
func (l *Ledger) Unfinished(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.started[id]
}

// Tried reports whether an earlier attempt to send id started, so it may
// have reached the target.
func (l *Ledger) Tried(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tried[id]
}

// Windows is the number of W records: attempts whose outcome was unknown.
func (l *Ledger) Windows() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, w := range l.windows {
		n += w
	}
	return n
}

// Bounced returns the id of the DSN already recorded for one of rcpts of
// message id, or "". A retry after a crash reuses it, so the DSN is
// published under the same id, which the ledger and the spool then see as
// the same message: one DSN, however often the failure is met again.
func (l *Ledger) Bounced(id string, rcpts []string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rcpts {
		if d := l.bounced[id][rcptField(r)]; d != "" {
			return d
		}
	}
	return ""
}

// Start records, durably and with one fsync for all, that attempts to
// send ids may start: deliverd records the files of a claimed group
// together, before the first of them is sent. After a crash each of them
// that is still in hand counts as an unknown outcome, sent or not.
func (l *Ledger) Start(ids ...string) error {
	recs := make([][]string, 0, len(ids))
	for _, id := range ids {
		recs = append(recs, []string{"S", id})
	}
	return l.commit(recs...)
}

// Accept records recipients that took the message, when others did not.
func (l *Ledger) Accept(id string, rcpts []string) error {
	recs := make([][]string, 0, len(rcpts))
	for _, r := range rcpts {
		recs = append(recs, []string{"R", id, rcptField(r)})
	}
	return l.commit(recs...)
}

// Done records that each of ids was delivered to every recipient. The
// records are written at once, in one write, so they survive the process
// being killed, and they count at once (Delivered), but they are made
// durable only by the next commit of any record, or by Sync: deliverd
// calls Sync before it waits for work. A power cut in between loses the
// Ds; the durable S of each attempt then counts the message as an
// unknown outcome (W) if its file comes back, and nothing is lost if it
// does not. A record refused by its check writes none of them.
func (l *Ledger) Done(ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	recs := make([][]string, len(ids))
	for i, id := range ids {
		recs[i] = []string{"D", id}
		if err := journal.Check(recs[i]); err != nil {
			return fmt.Errorf("ledger record: %w", err)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return l.broken
	}
	l.add(recs...)
	l.appended++
	if err := l.write(); err != nil {
		l.broken = fmt.Errorf("%w: %w", ErrBroken, err)
		return l.broken
	}
	for _, r := range recs {
		l.apply(r) // applied again after the fsync: a D is idempotent
	}
	return nil
}

// Sync makes every record written so far durable, with one fsync; it
// does nothing when there is none.
func (l *Ledger) Sync() error {
	l.mu.Lock()
	idle, err := l.synced == l.appended, l.broken
	l.mu.Unlock()
	if idle || err != nil {
		return err
	}
	return l.commit()
}

// Unsynced reports whether records were written (Done) that no fsync
// has made durable yet.
func (l *Ledger) Unsynced() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.synced != l.appended && l.broken == nil
}

// Fail records a known failure (code: the reply code, or "net"). With a
// dsnID it also records that this DSN reports rcpts, one record per
// recipient (a single record naming them all would outgrow a journal
// record: issue 16.1); the records are made durable together before the
// DSN is written, so a crash in between re-creates the same DSN id, never
// a second one.
func (l *Ledger) Fail(id, code, dsnID string, rcpts []string) error {
	if dsnID == "" || len(rcpts) == 0 {
		return l.commit([]string{"F", id, code})
	}
	recs := make([][]string, 0, len(rcpts))
	for _, r := range rcpts {
		recs = append(recs, []string{"F", id, code, dsnID, rcptField(r)})
	}
	return l.commit(recs...)
}

// Placing records, durably, that a complete copy of id is about to be
// renamed into a pickup folder (the pickup:// target): after a crash,
// Placed tells a staged copy that may be renamed in from one that may be
// partial, and a missing staged copy from one never written.
func (l *Ledger) Placing(id string) error { return l.commit([]string{"P", id}) }

// Placed reports whether Placing was recorded for id since its last D.
func (l *Ledger) Placed(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.placed[id]
}

// Window records an attempt whose outcome is unknown.
func (l *Ledger) Window(id string) error { return l.commit([]string{"W", id}) }

// commit appends recs and returns once they are durable, sharing the fsync
// with whatever other callers appended meanwhile.
func (l *Ledger) commit(recs ...[]string) error {
	l.mu.Lock()
	if l.broken != nil {
		l.mu.Unlock()
		return l.broken
	}
	for _, r := range recs {
		if err := journal.Check(r); err != nil {
			l.mu.Unlock()
			return fmt.Errorf("ledger record: %w", err)
		}
	}
	l.add(recs...)
	l.appended++
	mine := l.appended
	l.mu.Unlock()

	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.synced >= mine {
		return l.broken // a leader's fsync covered these records
	}
	// Leader: write and fsync all that is appended. Appenders wait on mu
	// meanwhile and are covered by the next leader's single fsync.
	upto := l.appended
	if err := l.sync(); err != nil {
		l.broken = fmt.Errorf("%w: %w", ErrBroken, err)
		l.synced = upto
		return l.broken
	}
	l.Syncs++
	for _, r := range l.pending {
		l.apply(r)
	}
	l.records += len(l.pending)
	l.pending = l.pending[:0]
	l.synced = upto
	l.maybeCompact()
	return nil
}

// add appends checked records to the journal's buffer. l.mu is held.
func (l *Ledger) add(recs ...[]string) {
	for _, r := range recs {
		l.j.Append(r...) // checked by the caller: cannot fail
		l.pending = append(l.pending, r)
		l.buffered = append(l.buffered, r)
	}
}

// maybeCompact compacts the journal when it has grown enough since the
// last compaction. It runs in a leader's commit (l.mu and l.syncMu held),
// after the fsync: every record is durable and applied, none pending.
func (l *Ledger) maybeCompact() {
	if l.records < max(cmp.Or(l.CompactMin, 1000), 2*l.base) {
		return
	}
	before := l.records
	err := l.compact()
	if err != nil && !spool.IsNoSpace(err) {
		l.broken = fmt.Errorf("%w: %w", ErrBroken, err)
	}
	if err != nil {
		l.base = l.records // try again when it has doubled once more
	}
	if l.OnCompact != nil {
		l.OnCompact(before, l.records, err)
	}
}

// sync writes and fsyncs the journal. l.mu is held.
func (l *Ledger) sync() error {
	if err := l.write(); err != nil {
		return err
	}
	return l.j.Sync() // the buffer is empty: the fsync alone
}

// write writes the buffered records in one call. A write the disk had no
// room for was undone (journal.ErrNotWritten): the buffered records are
// appended again and written after a pause, until FullWait has passed.
// l.mu is held.
func (l *Ledger) write() error {
	pause, wait := cmp.Or(l.FullPause, time.Second), cmp.Or(l.FullWait, 30*time.Second)
	deadline := time.Now().Add(wait)
	for {
		err := l.j.Write()
		if err == nil {
			l.buffered = l.buffered[:0]
			return nil
		}
		if !errors.Is(err, journal.ErrNotWritten) || !spool.IsNoSpace(err) || time.Now().After(deadline) {
			return err
		}
		if l.OnFull != nil {
			l.OnFull(err)
		}
		time.Sleep(pause)
		for _, r := range l.buffered {
			if err := l.j.Append(r...); err != nil {
				return err
			}
		}
	}
}

// compact rewrites the ledger with what still matters: delivered ids
// younger than Retention, unfinished attempts and accepted recipients.
func (l *Ledger) compact() error {
	var recs [][]string
	cutoff := time.Now().Add(-Retention)
	// W records first: replayed after an S they would close its attempt.
	// They are kept as long as delivered ids, so the count of unknown
	// outcomes (Windows) survives compaction.
	for id, n := range l.windows {
		if spool.ValidID(id) && !spool.IDTime(id).After(cutoff) {
			delete(l.windows, id)
			continue
		}
		for range n {
			recs = append(recs, []string{"W", id})
		}
	}
	for id := range l.delivered {
		if !spool.ValidID(id) || spool.IDTime(id).After(cutoff) {
			recs = append(recs, []string{"D", id})
		} else {
			delete(l.delivered, id)
		}
	}
	for id := range l.tried {
		recs = append(recs, []string{"S", id})
		if !l.started[id] {
			recs = append(recs, []string{"F", id, "compacted"})
		}
	}
	for id, m := range l.bounced {
		if spool.ValidID(id) && !spool.IDTime(id).After(cutoff) {
			delete(l.bounced, id)
			continue
		}
		for k, dsnID := range m {
			recs = append(recs, []string{"F", id, "compacted", dsnID, k})
		}
	}
	for id, m := range l.accepted {
		for k := range m {
			recs = append(recs, []string{"R", id, k})
		}
	}
	for id := range l.placed {
		if spool.ValidID(id) && !spool.IDTime(id).After(cutoff) {
			delete(l.placed, id)
			continue
		}
		recs = append(recs, []string{"P", id})
	}
	// The new journal is written beside the open one (write, fsync,
	// rename, fsync the folder): a failure before the rename leaves the
	// open journal as it was, so a full disk costs nothing but the wait.
	if err := journal.RewriteFS(l.path, recs, l.fs); err != nil {
		return fmt.Errorf("compact ledger: %w", err)
	}
	l.j.Close()
	j, _, _, err := journal.OpenFS(l.path, l.fs)
	if err != nil {
		return fmt.Errorf("reopen compacted ledger: %v", err) // never a full disk to wait out: the old journal is closed
	}
	l.j, l.records, l.base = j, len(recs), len(recs)
	return nil
}

// Close makes the records written durable (Sync) and closes the journal.
func (l *Ledger) Close() error {
	err := l.Sync()
	if cerr := l.j.Close(); err == nil {
		err = cerr
	}
	return err
}
