package fetch

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync/atomic"
	"time"

	"example.org/popspool/fetchd/pop3"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/crash"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// batchSize is how many messages share one data sync, one journal fsync
// and one pair of folder fsyncs (group commit); the next batch downloads
// while one is made durable (flight.go).
const batchSize = 32

// session is one POP3 session of one account.
type session struct {
	f        *Fetcher
	a        *config.Account
	c        *pop3.Client
	cut      context.CancelCauseFunc // closes c from any goroutine (retrDeadline)
	j        *uidls
	caps     pop3.Caps // after the login
	loggedIn bool
	pending  []sealed      // written and recorded, not yet moved and DELE'd
	group    *spool.Group  // the pending downloads' data, durable at flush
	flight   *flight       // the batch made durable meanwhile: flight.go
	out      *bufio.Writer // the download's buffer, reused from one to the next
	dele     []int         // messages fetched before, deleted again before QUIT
	fetched  []int         // messages fetched and durable, deleted before QUIT
	listed   []message     // nil until the listing succeeded
	queue    []message     // what the session handles, in order, and
	at       int           // the index of the one in hand
	release  bool          // retrieve-now: try the messages set aside once more
	partial  bool          // the listing was cut at max_listing: the journal keeps what it did not see
	limit    pollLimit     // max_messages, max_bytes: limits.go
	stopping atomic.Bool   // fetchd is stopping and cut the session: no failure is the message's
	stats    Stats
	// forceRefresh asks built-in OAuth for a new access token (one retry
	// of a refused login); tokenFresh says the one in hand is new.
	forceRefresh, tokenFresh bool
}

type sealed struct {
	path, id, uidl string
	num            int
	stub           bool // the message stays on the server: no DELE
}

// Stats counts what one poll did. Failed counts failed downloads;
// SetAside, the listed messages set aside after too many (failures.go).
type Stats struct {
	Listed, Fetched, Deleted, Skipped, Stubbed, Failed, SetAside int
	Bytes                                                        int64
}

// Poll runs one session for account a: it downloads every message not yet
// recorded in the account's journal and deletes on the server only what is
// durable in incoming/. stop ends the session early but cleanly: the
// message in hand is finished, the safe DELEs sent, and QUIT.
//
// Every error has been logged with its event when Poll returns.
func (f *Fetcher) Poll(stop context.Context, a *config.Account) (Stats, error) {
	start := time.Now()
	s := &session{f: f, a: a, j: f.journals[a.Name], release: f.takeRelease(a.Name), group: f.S.NewGroup()}
	err := s.run(stop)
	s.group.Release()
	if s.cut != nil {
		s.cut(nil)
	}
	f.afterPoll(a, s.loggedIn, err)
	ev := event.Emit(&f.Log, event.FetchSession).Str("account", a.Name).Int("listed", s.stats.Listed).
		Int("fetched", s.stats.Fetched).Int("deleted", s.stats.Deleted).Int("skipped", s.stats.Skipped).
		Int("stubbed", s.stats.Stubbed).Int("failed", s.stats.Failed).Int64("bytes", s.stats.Bytes).
		Bool("at_limit", s.limit.reached).Float64(event.Elapsed, event.Since(start))
	if s.listed != nil {
		s.stats.SetAside = s.setAside()
		ev = ev.Int("set_aside", s.stats.SetAside)
	}
	if err != nil {
		ev.Bool("ok", false).Msg("poll ended early")
	} else {
		ev.Bool("ok", true).Msg("poll done")
	}
	return s.stats, err
}

func (s *session) run(stop context.Context) error {
	if err := s.connect(); err != nil {
		return err
	}
	defer s.c.Close()
	defer s.cutOnStop(stop)()
	msgs, err := s.listing()
	if err != nil {
		return err
	}
	s.listed = msgs
	s.queue = s.order(msgs)
	for i, m := range s.queue {
		s.at = i
		if stop.Err() != nil && s.c.InFlight() == 0 {
			break // the RETRs in flight, if any, are finished first
		}
		if s.needsDownload(m) && !s.wants(m) {
			continue // on the server for the next poll; known ones are still deleted
		}
		if err := s.one(stop, m); err != nil {
			if kindOf(err) == failFatal {
				return err // nothing more is written: recovery at start sorts it out
			}
			// What is durable moves on; nothing is deleted: the session
			// ends without QUIT.
			if ferr := s.flush(); kindOf(ferr) == failFatal {
				return ferr
			}
			return err
		}
	}
	if err := s.flush(); err != nil {
		if kindOf(err) != failFatal {
			s.flush() // what a full disk left recorded moves on
		}
		return err
	}
	if err := s.deleteAll(); err != nil {
		return classify(s.protocolError(err), failOther)
	}
	if err := s.c.Quit(); err != nil {
		return classify(s.protocolError(fmt.Errorf("QUIT: %w", err)), failOther)
	}
	crash.Point("fetchd.quit")
	if s.partial {
		return nil // UIDLs past the cut are on the server still: forget none
	}
	n, err := s.j.forget(listedSet(msgs))
	if err != nil {
		event.Emit(&s.f.Log, event.JournalFailed).Str("account", s.a.Name).Err(err).Msg("compacting the UIDL journal failed; fetchd stops so recovery runs at start")
		return classify(err, failFatal)
	}
	if n > 0 {
		event.Emit(&s.f.Log, event.JournalPrune).Str("account", s.a.Name).Int("forgotten", n).Msg("records of messages the server no longer has removed")
	}
	return nil
}

func (s *session) protocolError(err error) error {
	var ne net.Error
	ev := event.ProtocolError
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		ev = event.SessionTimeout
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded):
		ev = event.SessionCut
	}
	event.Emit(&s.f.Log, ev).Str("account", s.a.Name).Err(err).Msg("session ended; messages on disk are kept, nothing unsafe was deleted")
	return err
}

// one handles one listed message: known ones are only deleted (again);
// new ones are downloaded, sealed and recorded; one over max_size is left
// on the server (and, with oversize = "headers", its header stored).
func (s *session) one(stop context.Context, m message) error {
	rec, known := s.j.seen[m.uidl]
	if known && rec.stub && !s.tooBig(m) {
		known = false // only its header was stored, and max_size has grown: fetch it whole
	}
	switch {
	case known:
		if s.deleteKnown(rec) {
			s.dele = append(s.dele, m.num)
		}
		return nil
	case s.tooBig(m):
		return s.oversize(m)
	}
	id, err := s.download(stop, m)
	var me *msgError
	if errors.As(err, &me) {
		return s.failed(m, me)
	}
	if err != nil {
		return err
	}
	return s.record(m, id, false)
}

// record journals a sealed message (or stub) and flushes a full batch.
func (s *session) record(m message, id string, stub bool) error {
	var err error
	if stub {
		err = s.j.addStub(m.uidl, id, time.Now())
	} else {
		err = s.j.add(m.uidl, id, time.Now())
	}
	if err != nil {
		os.Remove(partPath(s.f.S, id)) // unrecorded: the server still has the message
		return classify(s.spoolError(err), failOther)
	}
	s.pending = append(s.pending, sealed{path: partPath(s.f.S, id), id: id, uidl: m.uidl, num: m.num, stub: stub})
	if err := s.landIfDown(); err != nil {
		return err
	}
	if len(s.pending) >= s.f.batch() {
		return s.launch()
	}
	return nil
}

// batch is how many messages make a batch.
func (f *Fetcher) batch() int {
	if f.batchSize > 0 {
		return f.batchSize
	}
	return batchSize
}

func (s *session) tooBig(m message) bool {
	max := int64(s.a.MaxSize)
	return max > 0 && m.size > max
}

// deleteKnown says whether an already fetched message should be deleted
// from the server now. A message of which only a stub was stored never is.
func (s *session) deleteKnown(rec record) bool {
	switch {
	case rec.stub:
		return false
	case !s.a.Keep:
		return true
	}
	return s.a.KeepDays > 0 && time.Since(rec.at) > time.Duration(s.a.KeepDays)*24*time.Hour
}

func partPath(s *spool.Spool, id string) string {
	return s.TmpDir() + string(os.PathSeparator) + id + ".part"
}

func uidlHash(u string) string {
	h := sha256.Sum256([]byte(u))
	return hex.EncodeToString(h[:6])
}

// download streams RETR into tmp/fetchd/<id>.part after the trace header
// lines, and closes it in the session's group: flush makes the data of
// the batch durable together.
func (s *session) download(stop context.Context, m message) (string, error) {
	start := time.Now()
	id := spool.NewID()
	p, err := s.group.Create(id)
	if err != nil {
		return "", s.spoolError(err)
	}
	w := s.writer(p)
	fmt.Fprint(w, s.f.traceHeader(s.a, m.uidl, id))
	g := &guard{w: w, left: s.downloadLimit(m), cut: func() { s.c.Close() }}
	var n int64
	err = s.within(s.retrBudget(m), fmt.Sprintf("RETR %d", m.num), func() (err error) {
		if err := s.sendAhead(stop, m); err != nil {
			return err
		}
		n, err = s.c.Retr(m.num, g)
		return err
	})
	if err != nil {
		p.Abort()
		return "", s.retrError(m, g, err)
	}
	if err := w.Flush(); err != nil {
		p.Abort()
		return "", s.spoolError(err)
	}
	if err := p.Close(); err != nil {
		os.Remove(p.Name())
		return "", s.spoolError(err)
	}
	if m.size > 0 && n != m.size {
		event.Emit(&s.f.Log, event.SizeMismatch).Str("account", s.a.Name).Str("id", id).Int64("list_size", m.size).Int64("got", n).Msg("kept as received")
	}
	s.stats.Fetched++
	s.stats.Bytes += n
	event.Emit(&s.f.Log, event.Fetched).Str("account", s.a.Name).Str("id", id).Int64("size", n).Str("uidl_hash", uidlHash(m.uidl)).
		Float64(event.Elapsed, event.Since(start)).Msg("fetched")
	return id, nil
}

// writer returns the session's download buffer, writing to p: one for
// all its downloads, not 64 KiB to allocate (and zero) for each message.
func (s *session) writer(p *spool.Part) *bufio.Writer {
	if s.out == nil {
		s.out = bufio.NewWriterSize(p, 64<<10)
	} else {
		s.out.Reset(p)
	}
	return s.out
}

// downloadLimit is how far a download may run: well past the size the
// server listed (sizes are often a little off) and max_size, but not for
// ever.
func (s *session) downloadLimit(m message) int64 {
	return max(2*m.size, int64(s.a.MaxSize)) + 1<<20
}

// guard stops a download that runs past its limit (a message that never
// ends): it closes the connection, which ends RETR with a read error, as
// draining the rest would never finish.
type guard struct {
	w       io.Writer
	left    int64
	cut     func()
	over    bool
	started bool
}

func (g *guard) Write(p []byte) (int, error) {
	if int64(len(p)) > g.left {
		if !g.over {
			g.over = true
			g.cut()
		}
		return 0, errors.New("download limit reached")
	}
	g.left -= int64(len(p))
	n, err := g.w.Write(p)
	if !g.started {
		g.started = true
		crash.Point("fetchd.retr") // part of the message is in hand
	}
	return n, err
}

// isWriteError tells a failure of our disk from one of the connection.
func isWriteError(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) || spool.IsNoSpace(err)
}

// spoolError reports a failed write to the spool; the session stops.
func (s *session) spoolError(err error) error {
	ev := event.SpoolIO
	if spool.IsNoSpace(err) {
		ev = event.DiskFull
	}
	event.Emit(&s.f.Log, ev).Str("account", s.a.Name).Err(err).Msg("fetching stopped; nothing unsafe deleted on the server")
	return err
}

// flush lands the batch in flight and makes the pending messages
// durable and moves them into incoming/ (flight.go), waiting for it;
// only then are they listed for deletion, which deleteAll sends before
// QUIT: durable before irreversible.
func (s *session) flush() error {
	if err := s.land(); err != nil {
		return err
	}
	if len(s.pending) == 0 {
		s.group.Release()
		return nil
	}
	if err := s.launch(); err != nil {
		return err
	}
	return s.land()
}

// journalError handles a failed journal sync. A full disk (the write
// failed) is survivable: the journal is reread, so that only records that
// reached the file count, and fsynced; parts with a record move on, the
// others are removed (no DELE was sent for them: the server still has
// them). Anything else, a failed fsync above all, leaves the journal in an
// unknown state: fetchd stops and recovery at start sorts it out.
func (s *session) journalError(err error) error {
	if !spool.IsNoSpace(err) {
		event.Emit(&s.f.Log, event.JournalFailed).Str("account", s.a.Name).Err(err).Msg("fetchd stops so recovery runs at start; nothing unsafe was deleted")
		return classify(err, failFatal)
	}
	return s.dropUnrecorded(err)
}

// dropUnrecorded handles a full disk at the journal, or a failed data
// sync of the batch (whose parts are then never synced again, DESIGN.md):
// the journal is reread, dropping the records not yet synced, and
// fsynced; parts with a durable record (their data was synced by an
// earlier flush) move on, the others are removed (no DELE was sent for
// them: the server still has them).
func (s *session) dropUnrecorded(err error) error {
	if rerr := s.j.reopen(); rerr != nil {
		event.Emit(&s.f.Log, event.JournalFailed).Str("account", s.a.Name).Err(rerr).Msg("fetchd stops so recovery runs at start; nothing unsafe was deleted")
		return classify(rerr, failFatal)
	}
	kept := s.pending[:0]
	for _, p := range s.pending {
		if rec, ok := s.j.seen[p.uidl]; ok && rec.id == p.id {
			kept = append(kept, p)
			continue
		}
		os.Remove(p.path) // unrecorded; a leftover would be removed at start anyway
	}
	s.pending = kept
	return classify(s.spoolError(err), failOther)
}

// deleteAll marks for deletion, in one pipelined round before QUIT, the
// messages this session made durable and those fetched in an earlier
// session that the server still lists (that session was cut before
// QUIT, RFC 1939 §6). DELE takes effect only at QUIT, so sending them
// all at the end deletes exactly what sending them batch by batch would,
// and leaves the connection to the RETRs meanwhile.
func (s *session) deleteAll() error {
	if len(s.dele)+len(s.fetched) == 0 {
		return nil
	}
	if err := s.c.DeleMany(append(s.dele, s.fetched...)); err != nil {
		return fmt.Errorf("DELE: %w", err)
	}
	crash.Point("fetchd.deleted") // marked on the server, not yet gone: QUIT commits
	s.stats.Deleted += len(s.dele) + len(s.fetched)
	if len(s.dele) > 0 {
		event.Emit(&s.f.Log, event.Redeleted).Str("account", s.a.Name).Int("count", len(s.dele)).Msg("deleted messages fetched before")
	}
	return nil
}

// stopGrace is how long a session goes on once fetchd is asked to stop:
// enough for the message in hand to be written and the session to end
// with QUIT. Past it the connection is closed, which is safe at any point
// (docs/crashes.md): a server that trickles a message must not hold a
// stop until the service manager kills fetchd (issue 16.3).
const stopGrace = 10 * time.Second

// cutOnStop closes the session stopGrace after stop ends; the returned
// func disarms it.
func (s *session) cutOnStop(stop context.Context) (disarm func()) {
	grace := stopGrace
	if s.f.stopGrace > 0 {
		grace = s.f.stopGrace
	}
	t := time.AfterFunc(time.Duration(math.MaxInt64), func() {
		s.stopping.Store(true)
		s.cut(fmt.Errorf("fetchd is stopping; session cut %s after the stop request", grace))
	})
	unregister := context.AfterFunc(stop, func() { t.Reset(grace) })
	return func() {
		unregister()
		t.Stop()
	}
}

// listingBudget bounds the LIST and UIDL listings together: each read has
// the account's time-out, and this bounds a server that keeps sending one
// line just inside it: three time-outs, plus a second per thousand entries
// max_listing allows.
// within runs one command of the session (what names it) and cuts the
// connection if it takes longer than budget in all: each read has its own
// time-out, this bounds a server that keeps sending and never ends.
func (s *session) within(budget time.Duration, what string, command func() error) error {
	late := time.AfterFunc(budget, func() { s.cut(fmt.Errorf("%s took longer than %s", what, budget)) })
	defer late.Stop()
	return command()
}

func (s *session) listingBudget() time.Duration {
	if s.f.listingBudget > 0 {
		return s.f.listingBudget
	}
	return 3*s.a.Timeout.D() + time.Duration(max(s.a.MaxListing, pop3.DefaultMaxListing)/1000)*time.Second
}
