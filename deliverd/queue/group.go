package queue

import (
	"context"

	"example.org/popspool/shared/crash"
	"example.org/popspool/shared/event"
)

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
	defer func() { releaseAll(ps) }() // settle released each, unless an error stopped the loop
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
		releaseAll(ps) // each is read again by handle
		for _, p := range ps {
			p.w.retry = true
			if err := q.handleSafely(ctx, p.w); err != nil {
				return err
			}
		}
		return nil
	}
	crash.Point("deliverd.sent")
	return q.settleGroup(ps, outs)
}

// settleGroup settles a delivered group: the D records of the files
// every recipient took are written together, in one write, before any
// of those files is removed (each D still comes before its file's
// removal, so the ledger's story is the single file's); the others are
// settled one by one. If the records cannot be written, each file is
// settled on its own, meeting the error as it would alone.
func (q *Queue) settleGroup(ps []*prepared, outs [][]Outcome) error {
	var ids []string
	for i, p := range ps {
		if delivered(outs[i]) {
			ids = append(ids, p.w.id)
		}
	}
	written := len(ids) > 1 && q.Ledger.Done(ids...) == nil
	for i, p := range ps {
		var err error
		if written && delivered(outs[i]) {
			err = q.remove(p.w.path, p.w.id, p.env, p.at)
		} else {
			err = q.settle(p.w.path, p.w.id, p.env, outs[i], p.at)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// releaseAll closes the files of a group (again: a no-op).
func releaseAll(ps []*prepared) {
	for _, p := range ps {
		p.at.release()
	}
}

// sendBatch is b.SendBatch with a panic returned instead of raised.
func sendBatch(ctx context.Context, b Batcher, jobs []Job) (outs [][]Outcome, panicked any) {
	defer func() { panicked = recover() }()
	return b.SendBatch(ctx, jobs), nil
}

// prepareSafely is prepare with a panic set aside, as handleSafely does.
func (q *Queue) prepareSafely(w work) (p *prepared, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, q.panicked(w, r)
		}
	}()
	return q.prepare(w)
}
