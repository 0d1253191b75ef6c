package queue

import (
	"errors"
	"fmt"

	"example.org/popspool/deliverd/ledger"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// DefaultLocalRepeats is how often the same local error may put the same
// file back into pickup/ before it counts as permanent (issue 16.1).
const DefaultLocalRepeats = 5

// maxRepeatsTracked bounds the table of files put back: past it, the
// table starts afresh (a count lost costs a few more rounds, no more).
const maxRepeatsTracked = 4096

// repeat is the local error that last put a file back, and how often in a
// row it did.
type repeat struct {
	err string
	n   int
}

// repeated counts cause for the file id and reports whether it has now
// put the file back often enough to be permanent. A full disk is never
// counted: it is the disk's state, not the file's, and is waited out.
func (q *Queue) repeated(id string, cause error) (int, bool) {
	if spool.IsNoSpace(cause) {
		return 0, false
	}
	limit := q.LocalRepeats
	if limit == 0 {
		limit = DefaultLocalRepeats
	}
	limit = max(limit, 2) // giveUp's own put-back must not give up again
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.repeats == nil || len(q.repeats) >= maxRepeatsTracked {
		q.repeats = map[string]repeat{}
	}
	r := q.repeats[id]
	if r.err != cause.Error() {
		r = repeat{err: cause.Error()}
	}
	r.n++
	q.repeats[id] = r
	if r.n < limit {
		return r.n, false
	}
	delete(q.repeats, id)
	return r.n, true
}

// settled forgets the put-backs of a file that has left the queue.
func (q *Queue) settled(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.repeats, id)
}

// giveUp ends the retries of a file that the same local error put back n
// times (setAside, event 4027).
func (q *Queue) giveUp(path, id string, n int, cause error) error {
	return q.setAside(path, id, fmt.Sprintf("local error repeated %d times: %v", n, cause), event.LocalRepeated)
}

// setAside takes a claimed file out of the loop for reason: its
// recipients not yet delivered get a DSN (5.3.0) and the file goes to
// badmail/ with the reason. Nothing it does can put the file back into
// the loop: if even the move to badmail/ fails, the file returns to
// pickup/ and its count starts again.
func (q *Queue) setAside(path, id, reason string, ev event.ID) error {
	env, err := envelopeOf(path)
	if err != nil {
		return q.dispose(path, id, env, nil, nil, reason+"; and unreadable: "+err.Error(), ev)
	}
	rcpts := q.pending(id, env.Receivers)
	failed := make([]Outcome, 0, len(rcpts))
	for _, r := range rcpts {
		failed = append(failed, Outcome{Rcpt: r, Text: reason, Enhanced: "5.3.0"})
	}
	if err := q.bounce(path, id, env, "local", failed, false, false); err != nil {
		if errors.Is(err, ledger.ErrBroken) {
			event.Emit(&q.Log, event.LedgerFailed).Str("id", id).Err(err).Msg("exiting")
			return err
		}
		event.Emit(&q.Log, event.DSNFailed).Str("id", id).Err(err).Msg("the message goes to badmail/ without a DSN")
	}
	return q.dispose(path, id, env, nil, rcptsOf(failed), reason, ev)
}

// unreadable handles a claimed file deliverd may not read: not a regular
// file (a symlink or FIFO swapped in after the scan) goes to badmail/ at
// once; one it has no permission to read, once the same error has put it
// back LocalRepeats times. The entry itself is renamed (no read needed),
// unchanged, without a DSN: its envelope cannot be read (event 4022).
func (q *Queue) unreadable(path, id string, cause error) error {
	if !errors.Is(cause, spool.ErrNotRegular) {
		if _, permanent := q.repeated(id, cause); !permanent {
			if _, err := q.S.Move(path, spool.Pickup, id); err != nil {
				return q.ioError(fmt.Errorf("%v; and returning it to pickup/: %w", cause, err), id)
			}
			return q.ioError(cause, id)
		}
	}
	dst, err := q.S.Move(path, spool.Badmail, id)
	if err != nil {
		return q.ioError(err, id)
	}
	q.mu.Lock()
	q.Unsent++
	delete(q.repeats, id)
	q.mu.Unlock()
	event.Emit(&q.Log, event.UnreadableFile).Str("id", id).Str("path", dst).Err(cause).Msg("moved to badmail/ as it is, without a DSN")
	return nil
}
