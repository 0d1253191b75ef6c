package fetch

import (
	"example.org/popspool/shared/crash"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// flight is a full batch being made durable and moved into incoming/ in
// a goroutine while the session downloads the next one, so that the
// connection does not stand idle through the batch's syncs
// (docs/design-notes.md "A batch made durable while the next downloads").
//
// At most one batch is in flight: the next one takes off only once it
// has landed, so the journal's records reach the file batch by batch, in
// the order of the parts' syncs. The session's goroutine alone touches
// the session: the flight's goroutine touches only the batch's parts,
// the journal file (uidls.take) and the spool's folders, and hands back
// what the session must do about a failure (landing), done there.
type flight struct {
	batch []sealed
	done  chan struct{}
	// landing is what the session does when the flight is down: nil
	// when every step succeeded, else the handling of the failed step.
	landing func() error
	nums    []int // the batch's messages to DELE, set when it succeeded
}

// launch sends the pending batch off to be made durable and moved; the
// session goes on with a new group for the next batch. A flight still
// in the air lands first.
func (s *session) launch() error {
	if err := s.land(); err != nil {
		return err
	}
	fl := &flight{batch: s.pending, done: make(chan struct{})}
	group, write := s.group, s.j.take()
	s.pending, s.group = nil, s.f.S.NewGroup()
	s.flight = fl
	go func() {
		defer close(fl.done)
		fl.landing = s.fly(fl, group, write)
	}()
	return nil
}

// land waits for the flight in the air, if any, and does what its
// outcome asks of the session: the batch's messages are listed for
// deletion, or its failure handled with the parts of both batches (the
// journal is reread, so the next batch's records, still buffered, go
// too).
func (s *session) land() error {
	fl := s.flight
	if fl == nil {
		return nil
	}
	<-fl.done
	s.flight = nil
	if fl.landing != nil {
		s.pending = append(fl.batch, s.pending...)
		return fl.landing()
	}
	if !s.a.Keep {
		s.fetched = append(s.fetched, fl.nums...)
	}
	return nil
}

// landIfDown lands the flight if it is down already: a failure (a full
// disk) stops the session at the next message, not a batch later.
func (s *session) landIfDown() error {
	if s.flight == nil {
		return nil
	}
	select {
	case <-s.flight.done:
		return s.land()
	default:
		return nil
	}
}

// fly makes the batch durable, its parts' data (one group sync) and
// names (tmp/fetchd's fsync) before the journal records that say they
// exist (a record without its file would have the next poll DELE a
// message that is nowhere: the power-cut model in powercut_test.go finds
// exactly that state without either), then moves the parts into
// incoming/ (one fsync per folder). It runs in the flight's goroutine; a
// failure is returned as what the session is to do about it.
func (s *session) fly(fl *flight, group *spool.Group, writeJournal func() error) (landing func() error) {
	if err := group.Sync(); err != nil {
		return func() error { return s.dropUnrecorded(err) }
	}
	if err := s.f.S.SyncTmp(); err != nil {
		return func() error { return s.dirSyncFailed(err) }
	}
	if err := writeJournal(); err != nil {
		return func() error { return s.journalError(err) }
	}
	crash.Point("fetchd.journaled")
	b := s.f.S.NewBatch()
	for _, p := range fl.batch {
		if _, err := b.Move(p.path, spool.Incoming, p.id); err != nil {
			// Still in tmp/ with a record: moved on by recovery at start,
			// which a restart runs now.
			return func() error { return classify(s.spoolError(err), failFatal) }
		}
		if !p.stub {
			fl.nums = append(fl.nums, p.num)
		}
	}
	if err := b.Commit(); err != nil {
		return func() error { return s.dirSyncFailed(err) }
	}
	return nil
}

// dirSyncFailed reports a failed folder fsync: the state of the folder
// is unknown, fetchd stops so that recovery runs at start.
func (s *session) dirSyncFailed(err error) error {
	event.Emit(&s.f.Log, event.DirSyncFailed).Str("account", s.a.Name).Err(err).Msg("fetchd stops so recovery runs at start")
	return classify(err, failFatal)
}
