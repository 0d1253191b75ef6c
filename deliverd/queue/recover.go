package queue

import (
	"path/filepath"

	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/suspect"
)

// Recover finishes what a crash left in tmp/deliverd: delivered ids are
// removed; an attempt without an outcome is counted as an unknown outcome
// and retried; everything else goes back to pickup/, as a suspect that
// Run delivers alone before the others (alone.go). A file deliverd died
// on suspect.Limit times in a row, alone, goes to badmail/ with a DSN.
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
	if q.book != nil {
		q.book.Close()
	}
	if q.book, err = suspect.Open(filepath.Join(q.S.Dir(spool.State), "deliverd.suspects"), &q.Log); err != nil {
		return err
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
		if err := q.S.Remove(path); err != nil {
			return err
		}
		return q.book.Clear(id)
	}
	if q.Ledger.Unfinished(id) {
		if err := q.Ledger.Window(id); err != nil {
			return err
		}
		event.Emit(&q.Log, event.SMTPWindow).Str("id", id).Msg("crash during delivery; outcome unknown, retrying")
	}
	if deaths := q.book.Deaths(id); len(deaths) >= suspect.Limit {
		if err := q.setAside(path, id, suspect.Reason("deliverd", deaths), event.SuspectSetAside); err != nil {
			return err
		}
		return q.book.Clear(id)
	}
	event.Emit(&q.Log, event.Recovered).Str("id", id).Msg("returning to pickup/")
	if _, err := q.S.Move(path, spool.Pickup, id); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.suspects == nil {
		q.suspects = map[string]bool{}
	}
	q.suspects[id] = true
	return nil
}

// Close closes what Recover opened.
func (q *Queue) Close() error {
	if q.book == nil {
		return nil
	}
	return q.book.Close()
}
