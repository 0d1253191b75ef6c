package queue

import (
	"path/filepath"

	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

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
