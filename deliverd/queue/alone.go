package queue

import (
	"context"
	"fmt"

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
			err = q.panicked(w, r)
		}
	}()
	return q.handle(ctx, w)
}

// panicked sets aside the file whose handling panicked with r.
func (q *Queue) panicked(w work, r any) error {
	event.Emit(&q.Log, event.UnexpectedPanic).Str("id", w.id).Interface("panic", r).Msg("setting the file aside in badmail/")
	return q.setAside(w.path, w.id, fmt.Sprint("internal error while delivering: ", r), event.DeliverPanic)
}
