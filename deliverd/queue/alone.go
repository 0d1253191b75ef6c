package queue

import (
	"context"
	"fmt"

	"example.org/popspool/shared/crash"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/liveness"
	"example.org/popspool/shared/spool"
)

// aloneFirst delivers the suspects among the pickup/ names one at a time,
// before any other delivery starts, each under an "alone" record of the
// book (shared/suspect), and returns the other names. deliverd died with
// these files in hand and cannot tell which one killed it; delivered
// alone, a death counts against the one file in hand, and suspect.Limit
// of them set it aside (Recover).
func (q *Queue) aloneFirst(ctx context.Context, beat *liveness.Loop, names []string) ([]string, error) {
	var rest []string
	for _, name := range names {
		id, _ := spool.IDOf(name)
		if !q.suspected(id) || ctx.Err() != nil {
			rest = append(rest, name)
			continue
		}
		if err := q.deliverAlone(ctx, beat, name, id); err != nil {
			return nil, err
		}
	}
	return rest, nil
}

func (q *Queue) suspected(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.suspects[id]
}

func (q *Queue) deliverAlone(ctx context.Context, beat *liveness.Loop, name, id string) error {
	q.mu.Lock()
	delete(q.suspects, id)
	q.mu.Unlock()
	claimed, err := q.claim(spool.Pickup, []string{name})
	if err != nil || len(claimed) == 0 {
		return err
	}
	w := claimed[0]
	if err := q.book.Alone(id); err != nil {
		return q.putBack(w.path, id, err) // delivered with the others, uncounted
	}
	beat.Busy()
	if err := q.handleSafely(liveness.With(context.WithoutCancel(ctx), beat), w); err != nil {
		return err
	}
	return q.book.Clear(id)
}

// handleSafely is handle with a panic turned into what it is: a fault of
// deliverd with this message, seen by the process itself. The file goes to
// badmail/ with the panic as its reason and a DSN (event 4021), at once;
// the other deliveries go on.
func (q *Queue) handleSafely(ctx context.Context, w work) (err error) {
	defer func() {
		if r := recover(); r != nil {
			event.Emit(&q.Log, event.UnexpectedPanic).Str("id", w.id).Interface("panic", r).Msg("setting the file aside in badmail/")
			err = q.setAside(w.path, w.id, fmt.Sprint("internal error while delivering: ", r), event.DeliverPanic)
		}
	}()
	return q.handle(ctx, w)
}

// handleGroup delivers a unit of split: one file, or a Batcher's group.
func (q *Queue) handleGroup(ctx context.Context, ws []work) error {
	b, ok := q.Target.(Batcher)
	if !ok || len(ws) == 1 {
		for _, w := range ws {
			if err := q.handleSafely(ctx, w); err != nil {
				return err
			}
		}
		return nil
	}
	return q.deliverGroup(ctx, b, ws)
}

// deliverGroup delivers a claimed group through one SendBatch. A panic
// while preparing a file is that file's fault (handleSafely's rule); a
// panic in SendBatch is not known to be any one file's, so the group is
// delivered again one file at a time, each marked a retry (some copies
// may be in place), and the file that panics alone is set aside.
func (q *Queue) deliverGroup(ctx context.Context, b Batcher, ws []work) error {
	var ps []*prepared
	for _, w := range ws {
		p, err := q.prepareSafely(w)
		if err != nil {
			return err
		}
		if p != nil {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return nil
	}
	jobs := make([]Job, len(ps))
	for i, p := range ps {
		crash.Poison("deliverd.send", p.env.Sender)
		jobs[i] = p.job
	}
	crash.Point("deliverd.started") // their S records are durable: the claim wrote them
	outs, r := sendBatch(ctx, b, jobs)
	if r != nil {
		event.Emit(&q.Log, event.UnexpectedPanic).Int("files", len(ps)).Interface("panic", r).Msg("delivering the group again one file at a time")
		for _, p := range ps {
			p.w.retry = true
			if err := q.handleSafely(ctx, p.w); err != nil {
				return err
			}
		}
		return nil
	}
	crash.Point("deliverd.sent")
	for i, p := range ps {
		if err := q.settle(p.w.path, p.w.id, p.env, outs[i], p.at); err != nil {
			return err
		}
	}
	return nil
}

// sendBatch is b.SendBatch with a panic returned instead of raised.
func sendBatch(ctx context.Context, b Batcher, jobs []Job) (outs [][]Outcome, panicked any) {
	defer func() { panicked = recover() }()
	return b.SendBatch(ctx, jobs), nil
}

// prepareSafely is prepare with a panic set aside as handleSafely does.
func (q *Queue) prepareSafely(w work) (p *prepared, err error) {
	defer func() {
		if r := recover(); r != nil {
			event.Emit(&q.Log, event.UnexpectedPanic).Str("id", w.id).Interface("panic", r).Msg("setting the file aside in badmail/")
			p, err = nil, q.setAside(w.path, w.id, fmt.Sprint("internal error while delivering: ", r), event.DeliverPanic)
		}
	}()
	return q.prepare(w)
}
