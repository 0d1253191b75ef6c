// Package queue is deliverd's loop: it takes each file from pickup/ (and
// from deferred/ when its next attempt is due), delivers it to the target,
// records the outcome in the ledger, and then removes the file, defers it,
// or moves it to badmail/.
package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/deliverd/ledger"
	"example.org/popspool/deliverd/smtpc"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/crash"
	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/liveness"
	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/suspect"
)

// Queue delivers the files of one spool.
type Queue struct {
	S      *spool.Spool
	Cfg    *config.Config
	Log    zerolog.Logger
	Ledger *ledger.Ledger
	Target Target
	// lanes, when set, shares the spool with the queues of other targets,
	// and lane is the name of this queue's target (lanes.go).
	lanes *Lanes
	lane  string
	// Hostname names this host in DSNs (Reporting-MTA); default: the
	// config's helo, else os.Hostname().
	Hostname string
	// IOPause is the pause after a local I/O error (a full disk) before
	// the next file; default one second.
	IOPause time.Duration
	// StallBudget is how long a work loop may go without progress (a file
	// taken, a byte to or from the target) before the watchdog pings stop;
	// default: the longest SMTP step plus two minutes.
	StallBudget time.Duration
	// LocalRepeats is how often the same local error may put a file back
	// before the file goes to badmail/ with a DSN; default
	// DefaultLocalRepeats.
	LocalRepeats int

	book     *suspect.Book // deaths counted against files; opened by Recover
	mu       sync.Mutex
	suspects map[string]bool      // ids in hand at the last death: delivered alone first
	repeats  map[string]repeat    // claimed file id -> the local error that put it back
	Unsent   int                  // messages deferred or bounced by this run (read after Run)
	due      map[string]time.Time // deferred/ file (name and mtime) -> next attempt
	nowFunc  func() time.Time
	group    int // files a claim takes at most; 0: claimGroup (tests set less)
}

func (q *Queue) stallBudget() time.Duration {
	if q.StallBudget > 0 {
		return q.StallBudget
	}
	return smtpc.LongestStep() + 2*time.Minute
}

func (q *Queue) now() time.Time {
	if q.nowFunc != nil {
		return q.nowFunc()
	}
	return time.Now()
}

// Run delivers until ctx ends; with once, until pickup/ is empty and no
// deferred message is due.
func (q *Queue) Run(ctx context.Context, once bool) error {
	if err := q.run(ctx, once); err != nil {
		return err
	}
	return q.syncLedger()
}

// syncLinger is how long deliverd, out of work, waits for more before it
// makes the D records written meanwhile durable on their own: work that
// comes sooner (rewrited's next batch) is claimed with one fsync of its
// S records that carries them. Deliveries never wait for it.
const syncLinger = 50 * time.Millisecond

// syncLedger makes the D records written since the last commit durable
// (ledger.Done); deliverd does it before it waits for work (after
// syncLinger), so a D stays undurable only while more work keeps coming,
// whose next claim's S records carry it.
func (q *Queue) syncLedger() error {
	if err := q.Ledger.Sync(); err != nil {
		event.Emit(&q.Log, event.LedgerFailed).Err(err).Msg("exiting")
		return err
	}
	return nil
}

func (q *Queue) run(ctx context.Context, once bool) error {
	watch := q.S.Watch(ctx, q.Cfg.Rescan.D(), spool.Pickup, spool.Deferred)
	beat := liveness.Register("deliverd queue", q.stallBudget())
	defer beat.Close()
	lingered := false
	for {
		beat.Busy()
		names, wait, err := q.S.Ready(spool.Pickup)
		if err != nil {
			return err
		}
		names = q.mine(spool.Pickup, names)
		due, next, err := q.dueDeferred()
		if err != nil {
			return err
		}
		if err := q.handleAll(ctx, beat, names, due); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil // stopped: the files in hand are finished
		}
		if len(names)+len(due) > 0 {
			lingered = false
			continue
		}
		if !once && !lingered && q.Ledger.Unsynced() {
			lingered = true
			beat.Idle()
			if !watch.Wait(ctx, syncLinger) {
				return nil
			}
			continue
		}
		lingered = false
		if err := q.syncLedger(); err != nil {
			return err
		}
		q.Target.Idle()
		if once && wait == 0 {
			return nil
		}
		if wait == 0 || (next > 0 && next < wait) {
			wait = next
		}
		beat.Idle()
		if !watch.Wait(ctx, wait) {
			return nil
		}
	}
}

type work struct {
	folder, path, id string
	retry            bool // an attempt before this claim may have delivered it
}

// claimGroup is how many files share the folder fsyncs of their claim and
// the fsync of their S records.
const claimGroup = 32

// handleAll delivers the files with up to deliver.connections workers at
// once; pickup/ first, then the due deferred/ files. The feeder claims
// the files in groups (one fsync of each folder per group) and hands
// them to the workers. The first error that must stop the daemon stops
// the feeding and is returned. The feeder (beat) waiting for a free worker
// is idle by choice; each worker is a watched loop of its own.
func (q *Queue) handleAll(ctx context.Context, beat *liveness.Loop, pickup, deferred []string) error {
	jobs := make(chan []work)
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	fail := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if first == nil {
			first = err
		}
	}
	failed := func() bool { errMu.Lock(); defer errMu.Unlock(); return first != nil }
	pickup, err := q.aloneFirst(ctx, beat, pickup)
	if err != nil {
		return err
	}
	n := max(1, q.Cfg.Deliver.Connections)
	n = min(n, len(pickup)+len(deferred))
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wb := liveness.Register("deliverd delivery", q.stallBudget())
			defer wb.Close()
			// A stop request ends the feeding, not the deliveries in
			// hand: cutting a connection after the final dot would make
			// a duplicate of a message that went through.
			wctx := liveness.With(context.WithoutCancel(ctx), wb)
			for ws := range jobs {
				wb.Busy()
				if err := q.handleGroup(wctx, ws); err != nil {
					fail(err)
				}
				wb.Idle()
			}
		}()
	}
	for _, b := range []struct {
		folder string
		names  []string
	}{{spool.Pickup, pickup}, {spool.Deferred, deferred}} {
		for names := b.names; len(names) > 0 && ctx.Err() == nil && !failed(); {
			k := min(cmp.Or(q.group, claimGroup), len(names))
			claimed, err := q.claim(b.folder, names[:k])
			if err != nil {
				fail(err) // claimed files stay in tmp/: recovery at start
				break
			}
			for _, g := range q.split(claimed) {
				beat.Idle()
				jobs <- g // claimed files are delivered even when stopping
				beat.Busy()
			}
			names = names[k:]
		}
	}
	close(jobs)
	beat.Idle() // the workers watch themselves
	wg.Wait()
	beat.Busy()
	return first
}

// split cuts a claim into the units a worker delivers: the whole claim
// for a Batcher target, one file each for the others.
func (q *Queue) split(claimed []work) [][]work {
	if _, ok := q.Target.(Batcher); ok && len(claimed) > 0 {
		return [][]work{claimed}
	}
	var out [][]work
	for i := range claimed {
		out = append(out, claimed[i:i+1])
	}
	return out
}

// claim takes a group of files into tmp/deliverd with one fsync per
// folder, then records their S records with one fsync of the ledger,
// before any of them is sent. Files gone meanwhile are skipped.
func (q *Queue) claim(folder string, names []string) ([]work, error) {
	out, err := q.claimFiles(folder, names)
	if err != nil {
		return out, err
	}
	var start []string
	for i, w := range out {
		if q.Ledger.Delivered(w.id) {
			continue // a copy of a delivered message: removed unsent (4005)
		}
		out[i].retry = q.Ledger.Tried(w.id)
		start = append(start, w.id)
	}
	if len(start) == 0 {
		return out, nil
	}
	if err := q.Ledger.Start(start...); err != nil {
		// The claimed files stay in tmp/deliverd; recovery at the next
		// start reads the ledger as it reached the disk.
		event.Emit(&q.Log, event.LedgerFailed).Err(err).Msg("exiting")
		return nil, err
	}
	return out, nil
}

// claimFiles moves a group of files into tmp/deliverd.
func (q *Queue) claimFiles(folder string, names []string) ([]work, error) {
	b := q.S.NewBatch()
	var out []work
	for _, name := range names {
		path, id, err := b.Claim(folder, name)
		if spool.IsGone(err) {
			continue
		}
		if err != nil {
			if err := q.ioError(err, name); err != nil {
				return out, err
			}
			continue
		}
		out = append(out, work{folder: folder, path: path, id: id})
	}
	if err := b.Commit(); err != nil {
		return out, q.ioError(err, folder+"/")
	}
	return out, nil
}

// handle delivers one claimed file. Only errors that must stop the daemon
// are returned.
func (q *Queue) handle(ctx context.Context, w work) error {
	p, err := q.prepare(w)
	if p == nil {
		return err
	}
	// settle releases the file before it moves it; this is for a panic.
	defer p.at.release()
	crash.Point("deliverd.started") // its S is durable: the claim wrote it
	crash.Poison("deliverd.send", p.env.Sender)
	out, err := q.Target.Send(ctx, p.job)
	if err != nil {
		out = q.netFailure(w.id, p.job.Rcpts, out, err)
	}
	crash.Point("deliverd.sent")
	return q.settle(w.path, w.id, p.env, out, p.at)
}

// prepared is a claimed file ready to send.
type prepared struct {
	w   work
	env envelope.Envelope
	job Job
	at  attempt
}

// prepare reads a claimed file and makes its Job, whose Msg holds the
// file open until settle releases it. It returns nil when there is
// nothing to send, the file disposed of already (a copy of a delivered
// message, an unreadable envelope, no recipient left, another lane's
// target), with the error that must stop the daemon if any.
func (q *Queue) prepare(w work) (p *prepared, err error) {
	path, id := w.path, w.id
	start := time.Now()
	if w.folder == spool.Deferred {
		event.Emit(&q.Log, event.RetryNow).Str("id", w.id).Msg("next attempt is due; retrying")
	}
	if q.Ledger.Delivered(id) {
		event.Emit(&q.Log, event.DuplicateSkip).Str("id", id).Msg("the ledger says it was delivered; removing this copy")
		q.settled(id)
		return nil, q.S.Unlink(path)
	}
	env, msg, err := readEnvelope(path)
	if err != nil && spool.Unreadable(err) {
		return nil, q.unreadable(path, id, err)
	}
	if err != nil {
		return nil, q.dispose(path, id, env, nil, nil, "unreadable spool file: "+err.Error(), event.NoEnvelope)
	}
	at := attempt{msg: msg, start: start}
	defer func() {
		if p == nil {
			at.release() // not to be sent (or a panic): closed before the file moves
		}
	}()
	rcpts := q.pending(id, env.Receivers)
	if len(env.Receivers) == 0 {
		at.release()
		return nil, q.dispose(path, id, env, nil, nil, "no X-Receiver lines: the file did not pass rewrited", event.NoEnvelope)
	}
	if len(rcpts) == 0 {
		return nil, q.done(path, id, env, at)
	}
	if took, err := q.elsewhere(path, id, env, rcpts, at); took {
		return nil, err
	}
	j := Job{ID: id, Sender: env.Sender, Rcpts: rcpts, Msg: msg, Retry: w.retry}
	if q.Cfg.Deliver.SendORCPT() {
		j.ORCPT = env.Originals
	}
	return &prepared{w: w, env: env, job: j, at: at}, nil
}

// pending drops the recipients that accepted the message in an earlier
// attempt.
func (q *Queue) pending(id string, rcpts []string) []string {
	var left []string
	for _, r := range rcpts {
		if !q.Ledger.Accepted(id, r) {
			left = append(left, r)
		}
	}
	return left
}

// netFailure records a failed connection; recipients without a verdict
// are retried.
func (q *Queue) netFailure(id string, rcpts []string, out []Outcome, err error) []Outcome {
	var ne *NetError
	switch {
	case errors.As(err, &ne) && ne.AfterDot:
		if werr := q.Ledger.Window(id); werr == nil {
			event.Emit(&q.Log, event.SMTPWindow).Str("id", id).Err(err).Int("windows", q.Ledger.Windows()).Msg("will retry; the target may get a second copy")
		}
	case errors.Is(err, smtpc.ErrReplyTooLong):
		event.Emit(&q.Log, event.ReplyTooLong).Str("id", id).Err(err).Msg("will retry; the target is broken or hostile, check deliver.target")
	case errors.As(err, &ne) && ne.Refused:
		event.Emit(&q.Log, event.TargetRefused).Str("id", id).Err(err).Msg("will retry; check the target's log and deliver.helo, starttls, username")
	case errors.As(err, &ne) && ne.Lost:
		event.Emit(&q.Log, event.SessionLost).Str("id", id).Err(err).Msg("will retry; the message was not accepted")
	default:
		event.Emit(&q.Log, event.TargetDown).Str("id", id).Err(err).Msg("will retry")
	}
	decided := map[string]bool{}
	for _, o := range out {
		decided[o.Rcpt] = true
	}
	for _, r := range rcpts {
		if !decided[r] {
			out = append(out, Outcome{Rcpt: r, Temp: true, Text: err.Error()})
		}
	}
	return out
}

// settle records the outcome and moves the file accordingly: done;
// deferred/ with the temporarily failed recipients; badmail/ when none is
// left to retry. Permanently failed recipients, and on expiry the
// temporarily failed ones, get a DSN now.
func (q *Queue) settle(path, id string, env envelope.Envelope, out []Outcome, at attempt) error {
	at.release() // what is left to read goes by path (bounce, dispose)
	var ok []string
	var temp, perm []Outcome
	for _, o := range out {
		switch {
		case o.OK:
			ok = append(ok, o.Rcpt)
		case o.Temp:
			temp = append(temp, o)
		default:
			perm = append(perm, o)
		}
	}
	if delivered(out) {
		return q.done(path, id, env, at)
	}
	if len(ok) > 0 {
		if err := q.Ledger.Accept(id, ok); err != nil {
			return q.putBack(path, id, err)
		}
		event.Emit(&q.Log, event.PartialDelivery).Str("id", id).Strs("delivered", ok).Strs("failed", rcptsOf(append(temp, perm...))).Msg("delivered to some recipients")
	}
	expired := len(temp) > 0 && q.now().Sub(spool.IDTime(id)) >= q.Cfg.Deliver.Expire.D()
	failed := slices.Clone(perm)
	if expired {
		failed = append(failed, temp...)
		temp = nil
	}
	all := slices.Concat(perm, temp, failed[len(perm):])
	code := "net"
	if last := all[len(all)-1]; last.Code != 0 {
		code = strconv.Itoa(last.Code)
	}
	if err := q.bounce(path, id, env, code, failed, expired, len(temp) > 0); err != nil {
		return q.putBack(path, id, err)
	}
	lastErr := lastError(all, expired)
	if len(temp) > 0 {
		if len(perm) > 0 {
			event.Emit(&q.Log, event.Bounced).Str("id", id).Strs("rcpts", rcptsOf(perm)).Str("error", lastError(perm, false)).Msg("recipients refused permanently; the others are deferred")
		}
		return q.dispose(path, id, env, rcptsOf(temp), nil, lastErr, event.Deferred)
	}
	ev := event.Bounced
	if expired {
		ev = event.Expired
	}
	for _, o := range failed {
		if o.TooBig {
			event.Emit(&q.Log, event.TooBigForTarget).Str("id", id).Int64("size", fileSize(path)).Str("error", o.Text).Msg("bounced without retrying")
			break
		}
	}
	return q.dispose(path, id, env, nil, rcptsOf(failed), lastErr, ev)
}

// delivered reports whether every recipient of out took the message.
func delivered(out []Outcome) bool {
	for _, o := range out {
		if !o.OK {
			return false
		}
	}
	return true
}

func rcptsOf(l []Outcome) []string {
	r := make([]string, 0, len(l))
	for _, o := range l {
		r = append(r, o.Rcpt)
	}
	return r
}

// lastError is the X-Popspool-Last-Error line: the last failure's text.
func lastError(l []Outcome, expired bool) string {
	if len(l) == 0 {
		return ""
	}
	s := l[len(l)-1].Rcpt + ": " + l[len(l)-1].Text
	if expired {
		s = "expired, last error: " + s
	}
	return s
}

// attempt is one delivery of a claimed file: its message, held open
// until the file is settled, whose size (without envelope lines) the
// Delivered line reports, and when deliverd took the file.
type attempt struct {
	msg   Msg
	start time.Time
}

// release closes the claimed file; settle and done do it before they
// rename or remove the file.
func (at attempt) release() { at.msg.close() }

func (q *Queue) done(path, id string, env envelope.Envelope, at attempt) error {
	at.release()
	if err := q.Ledger.Done(id); err != nil {
		return q.putBack(path, id, err)
	}
	return q.remove(path, id, env, at)
}

// remove removes a delivered file once its D record is written.
func (q *Queue) remove(path, id string, env envelope.Envelope, at attempt) error {
	at.release()
	crash.Point("deliverd.done")
	q.settled(id)
	// The D record is written, durable with the next commit (Done), and
	// the unlink is not fsynced at all: a file a kill brings back is
	// recognised by its D and removed (event 4005); one a power cut
	// brings back, with its D lost, is an unknown outcome its durable S
	// counts (Recover).
	if err := q.S.Unlink(path); err != nil {
		return q.ioError(err, id)
	}
	event.Emit(&q.Log, event.Delivered).Str("id", id).Str("from", env.Sender).Strs("to", env.Receivers).Int("attempt", env.Attempts+1).
		Int64("size", at.msg.Size).Float64(event.Elapsed, event.Since(at.start)).Msg("delivered")
	return nil
}

// dispose rewrites the file's envelope and moves it to deferred/ (when
// retry holds recipients) or to badmail/.
func (q *Queue) dispose(path, id string, env envelope.Envelope, retry, failed []string, lastErr string, ev event.ID) error {
	folder := spool.Badmail
	env.Attempts++
	env.LastError = lastErr
	env.NextAttempt = time.Time{}
	if len(retry) > 0 {
		folder = spool.Deferred
		env.Receivers = retry
		env.NextAttempt = q.now().Add(q.backoff(env.Attempts)).Truncate(time.Second)
	} else if len(failed) > 0 {
		env.Receivers = failed
	}
	err := q.S.Replace(id, func(w io.Writer) error { return rewriteEnvelope(path, env, w) })
	if err != nil {
		return q.putBack(path, id, err)
	}
	dst, err := q.S.Move(path, folder, id)
	if err != nil {
		return q.putBack(path, id, err)
	}
	q.mu.Lock()
	q.Unsent++
	delete(q.repeats, id)
	q.mu.Unlock()
	e := event.Emit(&q.Log, ev).Str("id", id).Str("path", dst).Int("attempt", env.Attempts).Str("error", lastErr)
	if folder == spool.Deferred {
		e = e.Time("next_attempt", env.NextAttempt)
	}
	e.Msg("moved to " + folder + "/")
	return nil
}

func (q *Queue) backoff(attempts int) time.Duration {
	r := q.Cfg.Deliver.Retry
	return r[min(attempts, len(r))-1].D()
}

// putBack returns a claimed file to pickup/ after a local I/O error, so it
// is tried again; a failed folder fsync stops the daemon, and the same
// error met again and again sends the file to badmail/ (giveUp).
func (q *Queue) putBack(path, id string, cause error) error {
	if spool.IsDirSync(cause) {
		return q.ioError(cause, id)
	}
	if errors.Is(cause, ledger.ErrBroken) {
		// The claimed file stays in tmp/deliverd; recovery at the next
		// start reads the ledger as it reached the disk.
		event.Emit(&q.Log, event.LedgerFailed).Str("id", id).Err(cause).Msg("exiting")
		return cause
	}
	if n, permanent := q.repeated(id, cause); permanent {
		return q.giveUp(path, id, n, cause)
	}
	if _, err := q.S.Move(path, spool.Pickup, id); err != nil {
		cause = fmt.Errorf("%v; and returning it to pickup/: %w", cause, err)
	}
	return q.ioError(cause, id)
}

func (q *Queue) ioError(err error, name string) error {
	pause := q.IOPause
	if pause == 0 {
		pause = time.Second
	}
	return q.S.Trouble(err, name, pause)
}
