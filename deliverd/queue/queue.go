// Package queue is deliverd's loop: it takes each file from pickup/ (and
// from deferred/ when its next attempt is due), delivers it to the target,
// records the outcome in the ledger, and then removes the file, defers it,
// or moves it to badmail/.
package queue

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/deliverd/ledger"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// Queue delivers the files of one spool.
type Queue struct {
	S      *spool.Spool
	Cfg    *config.Config
	Log    zerolog.Logger
	Ledger *ledger.Ledger
	Target Target

	due     map[string]time.Time // deferred/ file (name and mtime) -> next attempt
	Unsent  int                  // messages deferred or bounced by this run
	nowFunc func() time.Time
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
	watch := q.S.Watch(ctx, q.Cfg.Rescan.D(), spool.Pickup, spool.Deferred)
	for {
		names, wait, err := q.S.Ready(spool.Pickup)
		if err != nil {
			return err
		}
		due, next, err := q.dueDeferred()
		if err != nil {
			return err
		}
		if err := q.handleAll(ctx, names, due); err != nil {
			return err
		}
		if len(names)+len(due) > 0 {
			continue
		}
		q.Target.Idle()
		if once && wait == 0 {
			return nil
		}
		if wait == 0 || (next > 0 && next < wait) {
			wait = next
		}
		if !watch.Wait(ctx, wait) {
			return nil
		}
	}
}

func (q *Queue) handleAll(ctx context.Context, pickup, deferred []string) error {
	for _, batch := range []struct {
		folder string
		names  []string
	}{{spool.Pickup, pickup}, {spool.Deferred, deferred}} {
		for _, n := range batch.names {
			if ctx.Err() != nil {
				return nil
			}
			if err := q.handle(ctx, batch.folder, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// handle claims one file and delivers it. Only errors that must stop the
// daemon are returned.
func (q *Queue) handle(ctx context.Context, folder, name string) error {
	path, id, err := q.S.Claim(folder, name)
	if spool.IsGone(err) {
		return nil
	}
	if err != nil {
		return q.ioError(err, name)
	}
	return q.deliver(ctx, path, id)
}

// deliver sends a claimed file and disposes of it by the outcome.
func (q *Queue) deliver(ctx context.Context, path, id string) error {
	if q.Ledger.Delivered(id) {
		event.Emit(&q.Log, event.DuplicateSkip).Str("id", id).Msg("the ledger says it was delivered; removing this copy")
		return q.S.Remove(path)
	}
	env, msg, err := readEnvelope(path)
	if err != nil {
		return q.dispose(path, id, env, nil, nil, "unreadable spool file: "+err.Error(), event.NoEnvelope)
	}
	rcpts := q.pending(id, env.Receivers)
	if len(env.Receivers) == 0 {
		return q.dispose(path, id, env, nil, nil, "no X-Receiver lines: the file did not pass rewrited", event.NoEnvelope)
	}
	if len(rcpts) == 0 {
		return q.done(path, id, env)
	}
	retry := q.Ledger.Tried(id)
	if err := q.Ledger.Start(id, env.Attempts+1); err != nil {
		return q.putBack(path, id, err)
	}
	out, err := q.Target.Send(ctx, id, env.Sender, rcpts, msg, retry)
	if err != nil {
		out = q.netFailure(id, rcpts, out, err)
	}
	return q.settle(path, id, env, out)
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
	if errors.As(err, &ne) && ne.AfterDot {
		if werr := q.Ledger.Window(id); werr == nil {
			event.Emit(&q.Log, event.SMTPWindow).Str("id", id).Err(err).Int("windows", q.Ledger.Windows).Msg("will retry; the target may get a second copy")
		}
	} else {
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

// settle records the outcome and moves the file accordingly.
func (q *Queue) settle(path, id string, env envelope.Envelope, out []Outcome) error {
	var ok, temp, perm []string
	var lastErr string
	for _, o := range out {
		switch {
		case o.OK:
			ok = append(ok, o.Rcpt)
		case o.Temp:
			temp = append(temp, o.Rcpt)
			lastErr = o.Rcpt + ": " + o.Text
		default:
			perm = append(perm, o.Rcpt)
			lastErr = o.Rcpt + ": " + o.Text
		}
	}
	if len(temp)+len(perm) == 0 {
		return q.done(path, id, env)
	}
	if len(ok) > 0 {
		if err := q.Ledger.Accept(id, ok); err != nil {
			return q.putBack(path, id, err)
		}
		event.Emit(&q.Log, event.PartialDelivery).Str("id", id).Strs("delivered", ok).Strs("failed", append(temp, perm...)).Msg("delivered to some recipients")
	}
	if err := q.Ledger.Fail(id, "fail"); err != nil {
		return q.putBack(path, id, err)
	}
	if len(temp) > 0 && q.now().Sub(spool.IDTime(id)) < q.Cfg.Deliver.Expire.D() {
		if len(perm) > 0 {
			event.Emit(&q.Log, event.Bounced).Str("id", id).Strs("rcpts", perm).Str("error", lastErr).Msg("recipients refused permanently; the others are deferred")
		}
		return q.dispose(path, id, env, temp, nil, lastErr, event.Deferred)
	}
	ev := event.Bounced
	if len(temp) > 0 {
		ev = event.Expired
	}
	return q.dispose(path, id, env, nil, append(perm, temp...), lastErr, ev)
}

func (q *Queue) done(path, id string, env envelope.Envelope) error {
	if err := q.Ledger.Done(id); err != nil {
		return q.putBack(path, id, err)
	}
	if err := q.S.Remove(path); err != nil {
		return q.ioError(err, id)
	}
	event.Emit(&q.Log, event.Delivered).Str("id", id).Str("from", env.Sender).Strs("to", env.Receivers).Int("attempt", env.Attempts+1).Msg("delivered")
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
	err := q.S.Replace(id, func(w *os.File) error { return rewriteEnvelope(path, env, w) })
	if err != nil {
		return q.putBack(path, id, err)
	}
	dst, err := q.S.Move(path, folder, id)
	if err != nil {
		return q.putBack(path, id, err)
	}
	q.Unsent++
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
// is tried again; a failed folder fsync stops the daemon.
func (q *Queue) putBack(path, id string, cause error) error {
	var dse *spool.DirSyncError
	if errors.As(cause, &dse) {
		event.Emit(&q.Log, event.DirSyncFailed).Err(cause).Msg("exiting")
		return cause
	}
	if _, err := q.S.Move(path, spool.Pickup, id); err != nil {
		cause = fmt.Errorf("%v; and returning it to pickup/: %w", cause, err)
	}
	return q.ioError(cause, id)
}

func (q *Queue) ioError(err error, name string) error {
	var dse *spool.DirSyncError
	if errors.As(err, &dse) {
		event.Emit(&q.Log, event.DirSyncFailed).Err(err).Msg("exiting")
		return err
	}
	ev := event.SpoolIO
	if spool.IsNoSpace(err) {
		ev = event.DiskFull
	}
	event.Emit(&q.Log, ev).Err(err).Str("file", name).Msg("will retry")
	time.Sleep(time.Second)
	return nil
}

// readEnvelope reads the envelope lines of a spool file and locates the
// message after them.
func readEnvelope(path string) (envelope.Envelope, Msg, error) {
	f, err := os.Open(path)
	if err != nil {
		return envelope.Envelope{}, Msg{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return envelope.Envelope{}, Msg{}, err
	}
	br := bufio.NewReaderSize(f, 16<<10)
	env, err := envelope.Read(br)
	if err != nil {
		return env, Msg{}, err
	}
	// The reader has buffered at most its size beyond the envelope.
	off, err := f.Seek(0, 1)
	if err != nil {
		return env, Msg{}, err
	}
	off -= int64(br.Buffered())
	return env, Msg{Path: path, Offset: off, Size: fi.Size() - off}, nil
}

// rewriteEnvelope writes env and the message of the file at path into w.
func rewriteEnvelope(path string, env envelope.Envelope, w *os.File) error {
	_, msg, err := readEnvelope(path)
	if err != nil {
		msg = Msg{Path: path} // keep every byte of a file we cannot read
		fi, serr := os.Stat(path)
		if serr != nil {
			return serr
		}
		msg.Size = fi.Size()
	}
	r, err := msg.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := env.Write(bw); err != nil {
		return err
	}
	if _, err := bw.ReadFrom(r); err != nil {
		return fmt.Errorf("copy message: %w", err)
	}
	return bw.Flush()
}

// Recover finishes what a crash left in tmp/deliverd: delivered ids are
// removed; an attempt without an outcome is counted as an unknown outcome
// and retried; everything else goes back to pickup/.
func (q *Queue) Recover() error {
	eml, part, other, err := q.S.Leftovers()
	if err != nil {
		return err
	}
	for _, p := range append(part, other...) {
		if err := q.S.Remove(p); err != nil {
			return err
		}
	}
	for _, p := range eml {
		if err := q.recoverOne(p); err != nil {
			return err
		}
	}
	return nil
}

func (q *Queue) recoverOne(path string) error {
	id, _ := spool.IDOf(filepath.Base(path))
	if q.Ledger.Delivered(id) {
		event.Emit(&q.Log, event.Recovered).Str("id", id).Msg("delivered before the crash; removing")
		return q.S.Remove(path)
	}
	if q.Ledger.Unfinished(id) {
		if err := q.Ledger.Window(id); err != nil {
			return err
		}
		event.Emit(&q.Log, event.SMTPWindow).Str("id", id).Msg("crash during delivery; outcome unknown, retrying")
	}
	event.Emit(&q.Log, event.Recovered).Str("id", id).Msg("returning to pickup/")
	_, err := q.S.Move(path, spool.Pickup, id)
	return err
}

// dueDeferred lists deferred/ files whose next attempt has come, and how
// long until the next one that has not.
func (q *Queue) dueDeferred() (due []string, next time.Duration, err error) {
	names, _, err := q.S.Ready(spool.Deferred)
	if err != nil {
		return nil, 0, err
	}
	if q.due == nil {
		q.due = map[string]time.Time{}
	}
	seen := map[string]bool{}
	now := q.now()
	for _, n := range names {
		key, at := q.nextAttempt(n)
		seen[key] = true
		if !at.After(now) {
			due = append(due, n)
			continue
		}
		if d := at.Sub(now); next == 0 || d < next {
			next = d
		}
	}
	for k := range q.due {
		if !seen[k] {
			delete(q.due, k)
		}
	}
	return due, next, nil
}

// nextAttempt returns the cache key and the next attempt of a deferred
// file, reading its envelope only when the file is new or changed.
func (q *Queue) nextAttempt(name string) (string, time.Time) {
	path := filepath.Join(q.S.Dir(spool.Deferred), name)
	fi, err := os.Stat(path)
	if err != nil {
		return name, time.Time{}
	}
	key := name + "\x00" + fi.ModTime().String()
	if at, ok := q.due[key]; ok {
		return key, at
	}
	env, _, err := readEnvelope(path)
	if err != nil && !strings.Contains(err.Error(), "Next-Attempt") {
		return key, time.Time{}
	}
	q.due[key] = env.NextAttempt
	return key, env.NextAttempt
}
