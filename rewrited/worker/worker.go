// Package worker is rewrited's loop: it takes each file from incoming/,
// decides its envelope, and moves it to pickup/, or to failed/ with the
// reason. rewrited keeps no state: its transform strips any envelope lines
// it finds before adding its own, so redoing it after a crash, or after an
// operator moved a file back, is safe.
package worker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/rewrited/filter"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/liveness"
	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/suspect"
)

// maxHeader bounds the header section; a longer one is treated as broken
// (go-message's own cap for message.Read is the same 1 MiB).
const maxHeader = 1 << 20

// Worker routes the files of one spool.
type Worker struct {
	S      *spool.Spool
	Cfg    *config.Config
	Log    zerolog.Logger
	Filter *filter.Filter
	// Backoff is the pause after a local I/O error before the next file.
	Backoff time.Duration
	// StallBudget is how long routing one file may take before the
	// watchdog pings stop; default: the filter's time-out plus a minute.
	StallBudget time.Duration
	// RouteDeadline is how long deciding one file's route may take before
	// it goes to failed/ (event 3016); default: the filter's time-out plus
	// half a minute.
	RouteDeadline time.Duration
	// Batch is how many files a batch takes; default batchSize.
	Batch int

	mu    sync.Mutex
	tries map[string]int // id -> times it could not be read
	dups  dupState       // the optional duplicate filter: dups.go
}

// New makes the worker of a config.
func New(s *spool.Spool, cfg *config.Config, log zerolog.Logger) *Worker {
	return &Worker{S: s, Cfg: cfg, Log: log, Filter: filter.New(cfg.Filter), Backoff: time.Second}
}

// reject is a message-level failure: the file goes to failed/.
type reject struct {
	ev     event.ID
	reason string
}

func (r *reject) Error() string { return r.reason }

// Recover finishes what a crash left in tmp/rewrited: half-written
// replacements are deleted, claimed files are routed again, one at a
// time, each under an "alone" record in state/rewrited.suspects
// (shared/suspect), the files seen dying most often first. A file that
// rewrited died on suspect.Limit times in a row, alone, goes to failed/:
// it would otherwise crash rewrited at every start and block the mail
// behind it. Deaths with a whole batch in hand count against none.
func (w *Worker) Recover(ctx context.Context) error {
	eml, part, other, err := w.S.Leftovers()
	if err != nil {
		return err
	}
	for _, p := range slices.Concat(part, other) { // half-written routed versions, older leftovers
		if err := w.S.Remove(p); err != nil {
			return err
		}
	}
	book, err := suspect.Open(filepath.Join(w.S.Dir(spool.State), "rewrited.suspects"), &w.Log)
	if err != nil {
		return err
	}
	defer book.Close()
	for _, p := range suspectsFirst(eml, book) {
		if err := w.recoverOne(ctx, p, book); err != nil {
			return err
		}
	}
	w.S.DropSpares() // the originals recovery retired
	return nil
}

// suspectsFirst orders the claimed files: those with deaths counted
// against them first, most first, so that the work in hand when a
// poison file is reached again is that file alone, early after start.
func suspectsFirst(paths []string, book *suspect.Book) []string {
	rank := map[string]int{}
	for i, id := range book.Suspects() {
		rank[id] = i - len(paths) - 1 // before every unranked file
	}
	out := slices.Clone(paths)
	slices.SortStableFunc(out, func(a, b string) int {
		ia, _ := spool.IDOf(filepath.Base(a))
		ib, _ := spool.IDOf(filepath.Base(b))
		return rank[ia] - rank[ib]
	})
	return out
}

// stale reports whether the routed version of a claimed original already
// went on (a crash came between the batch's commit and the removal): it
// is in pickup/ or failed/, an operator moved it from failed/ back to
// incoming/ (rewrited routes it from there, replacing its old lines), or
// deliverd has it in hand, deferred or bounced it, under its id or a
// same-id copy's name. Once deliverd has
// delivered it, it is nowhere: the original is routed again and
// deliverd's ledger drops the copy (event 4005).
func (w *Worker) stale(id string) bool {
	for _, dir := range []string{w.S.Dir(spool.Incoming), w.S.Dir(spool.Pickup), w.S.Dir(spool.Failed), w.S.Dir(spool.Deferred),
		w.S.Dir(spool.Badmail), w.S.Dir(spool.Duplicates), filepath.Join(w.S.Root, spool.Tmp, "deliverd")} {
		if _, err := os.Stat(filepath.Join(dir, id+".eml")); err == nil {
			return true
		}
		if m, _ := filepath.Glob(filepath.Join(dir, id+"-*.eml")); len(m) > 0 {
			return true
		}
	}
	return false
}

func (w *Worker) recoverOne(ctx context.Context, path string, book *suspect.Book) error {
	id, _ := spool.IDOf(filepath.Base(path))
	if w.stale(id) {
		event.Emit(&w.Log, event.Recovered).Str("id", id).Msg("already routed before the crash; removing the claimed original")
		if err := w.S.Remove(path); err != nil {
			return err
		}
		return book.Clear(id)
	}
	if deaths := book.Deaths(id); len(deaths) >= suspect.Limit {
		reason := suspect.Reason("rewrited", deaths)
		event.Emit(&w.Log, event.RewriteStuck).Str("id", id).Int("deaths", len(deaths)).Msg("rewrited died on this file again and again; quarantined")
		if err := w.moveNow(path, id, &plan{reject: &reject{event.RewriteStuck, reason}}); err != nil {
			return err
		}
		return book.Clear(id)
	}
	if err := book.Alone(id); err != nil {
		return w.putBack(path, id, err) // routed in the normal flow, uncounted
	}
	event.Emit(&w.Log, event.Recovered).Str("id", id).Msg("routing a file claimed before a crash")
	g := w.S.NewGroup()
	r, err := w.process(ctx, path, id, g)
	if err != nil {
		return err
	}
	if err := w.handOff(g, []*routed{r}); err != nil {
		return err
	}
	return book.Clear(id)
}

// moveNow finishes one file on its own and commits its move.
func (w *Worker) moveNow(path, id string, p *plan) error {
	g := w.S.NewGroup()
	r, err := w.finish(path, id, p, g, time.Now())
	if err != nil {
		return err
	}
	return w.handOff(g, []*routed{r})
}

// batchSize is the most files that share the data sync of their routed
// versions and the folder fsyncs of their claim and of their move on
// (group commit). A claim takes what is waiting, so a large one forms
// only under a backlog, where it shares the syncs among more files; a
// lone message is still claimed alone at once.
const batchSize = 128

// spareLinger is how long rewrited keeps its spare inodes (spool.Retire)
// once it has nothing to route: long enough to reuse them for fetchd's
// next batch, short enough that no old message stays on the disk long.
const spareLinger = 2 * time.Second

// Run routes files as they arrive until ctx ends; with once, until
// incoming/ is empty.
func (w *Worker) Run(ctx context.Context, once bool) error {
	watch := w.S.Watch(ctx, w.Cfg.Rescan.D(), spool.Incoming)
	beat := liveness.Register("rewrited routing", w.stallBudget())
	defer beat.Close()
	defer w.closeDups()
	defer w.S.DropSpares() // a stop leaves no old message behind
	ctx = liveness.With(ctx, beat)
	worked := time.Now()
	for {
		beat.Busy()
		w.purgeDuplicates()
		names, wait, err := w.S.Ready(spool.Incoming)
		if err != nil {
			return err
		}
		if len(names) > 0 {
			worked = time.Now()
		} else if time.Since(worked) >= spareLinger {
			w.S.DropSpares()
		}
		for len(names) > 0 && ctx.Err() == nil {
			n := min(w.batch(), len(names))
			if err := w.handleBatch(ctx, names[:n]); err != nil {
				return err
			}
			names = names[n:]
		}
		if ctx.Err() != nil {
			return nil
		}
		if once && wait == 0 {
			if names, _, _ := w.S.Ready(spool.Incoming); len(names) == 0 {
				return nil
			}
			continue
		}
		beat.Idle()
		if w.S.Spares() > 0 && (wait == 0 || wait > spareLinger) {
			wait = spareLinger // back in time to drop them
		}
		if !watch.Wait(ctx, wait) {
			return nil
		}
	}
}

func (w *Worker) batch() int {
	if w.Batch > 0 {
		return w.Batch
	}
	return batchSize
}

// stallBudget is how long routing one file may take before the watchdog
// pings stop: the filter's time-out, plus a minute for the file's I/O.
func (w *Worker) stallBudget() time.Duration {
	if w.StallBudget > 0 {
		return w.StallBudget
	}
	return w.Cfg.Filter.Timeout.D() + time.Minute
}

type claimed struct{ path, id string }

// handleBatch claims files, routes each, and moves them on with one fsync
// per folder. A stop request lets the batch in hand finish. Only errors
// that must stop the daemon (a failed folder fsync) are returned.
func (w *Worker) handleBatch(ctx context.Context, names []string) error {
	in := w.S.NewBatch()
	var files []claimed
	for _, name := range names {
		path, id, err := in.Claim(spool.Incoming, name)
		if spool.IsGone(err) {
			event.Emit(&w.Log, event.FileVanished).Str("file", name).Msg("someone else took it")
			continue
		}
		if err != nil {
			if err := w.ioError(err, name); err != nil {
				return err
			}
			continue
		}
		files = append(files, claimed{path, id})
	}
	if err := in.Commit(); err != nil {
		return w.ioError(err, "incoming/")
	}
	g := w.S.NewGroup()
	var rs []*routed
	for _, f := range files {
		liveness.From(ctx).Busy()
		r, err := w.process(context.WithoutCancel(ctx), f.path, f.id, g)
		if err != nil {
			g.Release()
			return err
		}
		rs = append(rs, r)
	}
	return w.handOff(g, rs)
}

// routed is a claimed file whose routed version is written in tmp/ and
// closed, to be moved on once its group is synced; a nil part moves the
// claimed file itself, as it is (unreadable).
type routed struct {
	path, id string // the claimed original
	part     *spool.Part
	folder   string
	done     func(dst string) // logs the outcome, once the move is durable
	// late: the original's plan was given up on and may still be reading
	// it, so it is removed, never kept as a spare to be written over.
	late bool
}

// handOff makes the routed versions of a batch durable together (one
// group sync, docs/crashes.md), moves them on (one fsync per folder),
// then retires the claimed originals (one fsync of tmp/ for all) and logs
// the outcomes. nil entries (files put back) are skipped.
func (w *Worker) handOff(g *spool.Group, rs []*routed) error {
	rs = slices.DeleteFunc(rs, func(r *routed) bool { return r == nil })
	if err := g.Sync(); err != nil {
		return w.putBackAll(rs, err)
	}
	b := w.S.NewBatch()
	var moved []func()
	for _, r := range rs {
		done, err := w.moveOn(r, b)
		if err != nil {
			return err
		}
		if done != nil {
			moved = append(moved, done)
		}
	}
	w.syncDups() // the seen records before the files they name are durably moved on
	if err := b.Commit(); err != nil {
		return w.ioError(err, "pickup/")
	}
	for _, d := range moved {
		d()
	}
	if err := w.S.SyncTmp(); err != nil {
		return w.ioError(err, "tmp/rewrited")
	}
	return nil
}

// moveOn moves a routed version (or the claimed file, unreadable) into
// b; the returned func, called once b is committed, retires the claimed
// original (removed, or kept as a spare inode for a later part: the
// fsync of tmp/ after it makes either durable) and logs the outcome. A
// failed move puts the original back.
func (w *Worker) moveOn(r *routed, b *spool.Batch) (func(), error) {
	src := r.path
	if r.part != nil {
		src = r.part.Name()
	}
	dst, err := b.Move(src, r.folder, r.id)
	if err != nil {
		if r.part != nil {
			w.S.Unlink(r.part.Name())
		}
		return nil, w.putBack(r.path, r.id, err)
	}
	return func() {
		if r.part != nil {
			retire := w.S.Retire
			if r.late {
				retire = w.S.Unlink
			}
			if err := retire(r.path); err != nil {
				w.Log.Debug().Err(err).Str("id", r.id).Msg("claimed original not removed; recovery will")
			}
		}
		r.done(dst)
	}, nil
}

// putBackAll returns the claimed originals of a group whose sync failed
// to incoming/, and removes their routed versions, which are never
// synced again (DESIGN.md: never retry a failed fsync).
func (w *Worker) putBackAll(rs []*routed, cause error) error {
	var errs []error
	for _, r := range rs {
		if r.part != nil {
			w.S.Unlink(r.part.Name())
		}
		if _, err := w.S.Move(r.path, spool.Incoming, r.id); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		cause = fmt.Errorf("%w; and returning files to incoming/: %w", cause, err)
	}
	return w.ioError(cause, "tmp/rewrited")
}

// process routes one claimed file and writes its routed version into
// group g; nil (and no error) means the file was put back.
func (w *Worker) process(ctx context.Context, path, id string, g *spool.Group) (r *routed, err error) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			r, err = w.finish(path, id, &plan{reject: &reject{event.UnexpectedPanic, fmt.Sprint("internal error: ", p)}}, g, start)
		}
	}()
	p, err := w.planWithin(ctx, path, id)
	if err != nil && spool.Unreadable(err) {
		return w.unreadable(path, id, err)
	}
	if err == nil {
		err = w.dedupe(path, id, p)
	}
	if err != nil {
		return nil, w.putBack(path, id, err)
	}
	return w.finish(path, id, p, g, start)
}

// unreadableTries is how often a file rewrited may not read is put back
// before it goes to failed/ as it is: an operator who copied a file in as
// another user has a few rounds to fix its owner.
const unreadableTries = 3

// unreadable handles a claimed file rewrited cannot read: not a regular
// file (a symlink or FIFO swapped in after the scan) goes to failed/ at
// once; a file it has no permission to read, after unreadableTries. The
// entry itself is renamed (which needs no read permission), unchanged,
// and event 3017 names the reason; before, it went back and forth between
// incoming/ and tmp/ for ever.
func (w *Worker) unreadable(path, id string, cause error) (*routed, error) {
	if !errors.Is(cause, spool.ErrNotRegular) {
		w.mu.Lock()
		if w.tries == nil {
			w.tries = map[string]int{}
		}
		w.tries[id]++
		n := w.tries[id]
		w.mu.Unlock()
		if n < unreadableTries {
			return nil, w.putBack(path, id, cause)
		}
	}
	w.mu.Lock()
	delete(w.tries, id)
	w.mu.Unlock()
	return &routed{path: path, id: id, folder: spool.Failed, done: func(dst string) {
		event.Emit(&w.Log, event.Unreadable).Str("id", id).Str("path", dst).Err(cause).Msg("moved to failed/ as it is")
	}}, nil
}

// planWithin makes the plan of a file within the routing deadline. A
// panic while planning, or a plan that takes longer (a header that sends
// the parser into a loop, a filter that does not end), is what the process
// can see for itself: the file goes to failed/ at once with that reason.
// A plan given up on is left to finish, or not, on its own; the file is
// copied to failed/ from the claimed original, which it only reads.
func (w *Worker) planWithin(ctx context.Context, path, id string) (*plan, error) {
	type result struct {
		p   *plan
		err error
	}
	ch := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				ch <- result{p: &plan{reject: &reject{event.UnexpectedPanic, fmt.Sprint("internal error: ", r)}}}
			}
		}()
		p, err := w.makePlan(ctx, path, true)
		ch <- result{p, err}
	}()
	d := w.routeDeadline()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.p, r.err
	case <-t.C:
		go func() { (<-ch).p.close() }() // the late plan's open file
		return &plan{reject: &reject{event.RouteTimeout, fmt.Sprintf("routing did not finish within %s", d)}}, nil
	}
}

// routeDeadline bounds the planning of one file: the filter's time-out
// (which passes the message unfiltered, event 3013) plus half a minute.
func (w *Worker) routeDeadline() time.Duration {
	if w.RouteDeadline > 0 {
		return w.RouteDeadline
	}
	return w.Cfg.Filter.Timeout.D() + 30*time.Second
}

// finish writes the routed (or failed) version as a new file beside the
// claimed one, in group g, closed but not yet synced. The claimed
// original stays until the batch's moves are committed: a crash before
// leaves it to be routed again (and the part is deleted); a crash after
// leaves a stale original whose id is already in pickup/ or failed/,
// which recovery removes. So the data sync and the folder fsyncs are
// shared by the batch. The outcome's line gives the message's size and
// the time from start (when process took the file) to the written
// version, not the batch's commit.
func (w *Worker) finish(path, id string, p *plan, g *spool.Group, start time.Time) (*routed, error) {
	defer p.close()
	folder, env := spool.Pickup, p.env
	if p.reject != nil {
		folder = spool.Failed
		env = envelope.Envelope{Failed: fmt.Sprintf("%d %s", p.reject.ev, p.reject.reason)}
	} else if p.dup != nil && p.dup.all {
		folder = spool.Duplicates // with its envelope: requeue, or mv to pickup/, delivers it anyway
	}
	part, err := g.Create(id)
	if err != nil {
		return nil, w.putBack(path, id, err)
	}
	size, err := rewrite(path, p, env, part)
	if err != nil {
		part.Abort()
		return nil, w.putBack(path, id, err)
	}
	if err := part.Close(); err != nil {
		w.S.Unlink(part.Name())
		return nil, w.putBack(path, id, err)
	}
	took := event.Since(start)
	late := p.reject != nil && p.reject.ev == event.RouteTimeout
	return &routed{path: path, id: id, part: part, folder: folder, late: late, done: func(dst string) {
		w.report(id, dst, p, size, took)
	}}, nil
}

func (w *Worker) report(id, dst string, p *plan, size int64, took float64) {
	if p.old.HasSender || len(p.old.Receivers) > 0 || p.old.Failed != "" {
		event.Emit(&w.Log, event.EnvelopeFixed).Str("id", id).Str("was_failed", p.old.Failed).Msg("replaced the envelope lines of a file moved back")
	}
	for _, warn := range p.warnings {
		if warn == "unrouted" {
			event.Emit(&w.Log, event.Unrouted).Str("id", id).Strs("to", p.env.Receivers).Msg("no local recipient in the message")
		} else {
			event.Emit(&w.Log, event.FilterBroken).Str("id", id).Str("error", warn).Msg("check the filter command")
		}
	}
	if p.tag != "" {
		event.Emit(&w.Log, event.FilterTagged).Str("id", id).Str("tag", strings.TrimSpace(p.tag)).Msg("tagged by the filter")
	}
	if p.reject != nil {
		event.Emit(&w.Log, p.reject.ev).Str("id", id).Str("reason", p.reject.reason).Str("path", dst).
			Int64("size", size).Float64(event.Elapsed, took).Msg("moved to failed/")
		return
	}
	w.reportDups(id, dst, p)
	if p.dup != nil && p.dup.all {
		return
	}
	event.Emit(&w.Log, event.Routed).Str("id", id).Str("from", p.env.Sender).Strs("to", p.env.Receivers).
		Int64("size", size).Float64(event.Elapsed, took).Msg("routed to pickup/")
}

// headBuffer is how much of a file rewrited reads into its memory to
// parse the envelope lines and the header; the body is copied in the
// kernel. The header parser reads on past it as far as the header goes.
const headBuffer = 16 << 10

// skipEnvelope positions a reader after any envelope lines at the top of
// f and returns the offset of the message proper. The reader is one of
// heads: the caller releases it.
func skipEnvelope(f *os.File, old *envelope.Envelope) (*bufio.Reader, int64, error) {
	cr := &counter{r: f}
	br := pooled(&heads, cr)
	env, err := envelope.Read(br)
	if err != nil {
		release(&heads, br)
		return nil, 0, &reject{event.RouteFailed, "bad envelope line: " + err.Error()}
	}
	if old != nil {
		*old = env
	}
	return br, cr.n - int64(br.Buffered()), nil
}

// rewrite writes env, then the plan's tag (a header line, or ""), then
// the message of the file at path, byte for byte, into out, and returns
// the size of the message it copied (tag included, envelope lines not).
// The file the plan read is reused (each file is opened and read once);
// the message is copied from the plan's offset in the kernel
// (copy_file_range on Linux), not through rewrited's memory, and only as
// far as the size the plan's open found: a last call that only finds
// the end of the file is saved (the claimed file is rewrited's alone,
// and one that is not as long as it was is an error, retried).
func rewrite(path string, p *plan, env envelope.Envelope, out *spool.Part) (int64, error) {
	f, off, size := p.src, p.off, p.size
	if f == nil { // a plan given up on or a panic: start again from the file
		var err error
		if f, size, err = spool.OpenSized(path); err != nil {
			return 0, err
		}
		defer f.Close()
		if off, err = messageOffset(f); err != nil {
			return 0, err
		}
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	var head bytes.Buffer
	if err := env.Write(&head); err != nil {
		return 0, err
	}
	head.WriteString(p.tag)
	if _, err := out.Write(head.Bytes()); err != nil {
		return 0, err
	}
	n, err := out.CopyFrom(&io.LimitedReader{R: f, N: size - off})
	if err == nil && n != size-off {
		err = fmt.Errorf("%s: %d bytes copied of %d: %w", path, n, size-off, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return 0, fmt.Errorf("copy message: %w", err)
	}
	return int64(len(p.tag)) + n, nil
}

// messageOffset is where the message proper starts in f: after its
// envelope lines, or 0 if they are broken (the broken lines are kept:
// they are part of what failed).
func messageOffset(f *os.File) (int64, error) {
	br, off, err := skipEnvelope(f, nil)
	if br != nil {
		release(&heads, br)
	}
	var rej *reject
	if errors.As(err, &rej) {
		return 0, nil
	}
	return off, err
}

// putBack returns a claimed file to incoming/ after an I/O error (a full
// disk, say), so it is retried; a failed folder fsync stops the daemon.
func (w *Worker) putBack(path, id string, cause error) error {
	if spool.IsDirSync(cause) {
		return w.ioError(cause, id)
	}
	if _, err := w.S.Move(path, spool.Incoming, id); err != nil {
		return w.ioError(fmt.Errorf("%v; and returning it to incoming/: %w", cause, err), id)
	}
	return w.ioError(cause, id)
}

func (w *Worker) ioError(err error, name string) error {
	return w.S.Trouble(err, name, w.Backoff)
}

type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
