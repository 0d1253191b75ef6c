package fetch

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"example.org/popspool/fetchd/pop3"
	"example.org/popspool/shared/event"
)

// attemptLimit is how many failed downloads of one message set it aside
// (left on the server, not tried again until Retrieve Now). A cut or a
// time-out may be the network's fault, not the message's: five failures
// of the same message, each in its own session and each after every other
// message was fetched (failing messages go last), make a passing cause
// unlikely, while the cost of trying is small: nothing waits behind it.
const attemptLimit = 5

// minRetrRate bounds how slowly a message may arrive, on average, before
// its RETR is given up (retrBudget): 16 KiB/s is below any line a mail
// server is reached over, so only a message that never ends (or trickles
// for hours) meets it. A 50 MiB message may take about 53 minutes.
const minRetrRate = 16 << 10

// msgError is a download that failed while the server was sending (or
// refusing) this message. alive says the connection is still in step
// (an -ERR): the session goes on with the next message.
type msgError struct {
	err   error
	alive bool
}

func (e *msgError) Error() string { return e.err.Error() }
func (e *msgError) Unwrap() error { return e.err }

// retrBudget is the most one RETR may take in all: the account's time-out
// plus the listed size (and a MiB) at minRetrRate. Each read has its own
// time-out; this bounds a server that keeps sending and never ends.
func (s *session) retrBudget(m message) time.Duration {
	if s.f.retrBudget > 0 {
		return s.f.retrBudget
	}
	return s.a.Timeout.D() + time.Duration((m.size+1<<20)/minRetrRate)*time.Second
}

// retrError sorts a failed RETR: our disk (the session stops, the message
// is not to blame), or the message: an -ERR (the session goes on), or a
// connection that broke while it was being sent (the session ends).
func (s *session) retrError(m message, g *guard, err error) error {
	var pe *pop3.Error
	switch {
	case g.over:
		err = fmt.Errorf("RETR %d: message runs past %d octets (LIST said %d); connection closed: %w", m.num, s.downloadLimit(m), m.size, err)
		event.Emit(&s.f.Log, event.ProtocolError).Str("account", s.a.Name).Err(err).Msg("a message that never ends; nothing unsafe was deleted")
		return &msgError{err: err}
	case errors.As(err, &pe):
		return &msgError{err: fmt.Errorf("RETR %d: %w", m.num, err), alive: s.c.Err() == nil}
	case isWriteError(err):
		return s.spoolError(err)
	}
	return &msgError{err: s.protocolError(fmt.Errorf("RETR %d: %w", m.num, err))}
}

// failed counts a failed download of m durably, logs it and, at the
// limit, sets the message aside. It returns nil when the session may go
// on with the next message.
func (s *session) failed(m message, me *msgError) error {
	if s.stopping.Load() {
		return classify(me.err, failOther) // cut by the stop, not by the message
	}
	n := s.j.attempts[m.uidl] + 1
	if err := s.j.addAttempts(m.uidl, n, time.Now()); err != nil {
		return classify(s.spoolError(err), failOther)
	}
	if err := s.syncJournal(); err != nil {
		return err
	}
	s.stats.Failed++
	event.Emit(&s.f.Log, event.MessageFailed).Str("account", s.a.Name).Str("uidl", m.uidl).
		Str("uidl_hash", uidlHash(m.uidl)).Int64("size", m.size).Int("attempts", n).Int("limit", attemptLimit).
		Bool("session_goes_on", me.alive).Err(me.err).Msg("message could not be downloaded; it stays on the server and is tried after the others")
	if n >= attemptLimit {
		event.Emit(&s.f.Log, event.MessageSetAside).Str("account", s.a.Name).Str("uidl", m.uidl).
			Str("uidl_hash", uidlHash(m.uidl)).Int64("size", m.size).Int("attempts", n).Err(me.err).
			Msg(fmt.Sprintf("a message of %d octets on the server cannot be downloaded after %d tries; set aside: it stays on the server and is not tried again until Retrieve Now", m.size, n))
	}
	if me.alive {
		return nil
	}
	return classify(me.err, failMessage)
}

// syncJournal makes the journal durable now: the batch in flight lands
// first, and pending parts are flushed, as their records must not be
// durable before their data and names.
func (s *session) syncJournal() error {
	if err := s.land(); err != nil {
		return err
	}
	if len(s.pending) > 0 {
		return s.flush()
	}
	if err := s.j.sync(); err != nil {
		return s.journalError(err)
	}
	return nil
}

// order is the order in which the session handles the listed messages:
// those that never failed first, then those that failed before, fewest
// failures first; those set aside only after Retrieve Now, and last.
func (s *session) order(msgs []message) []message {
	var retried int
	out := make([]message, 0, len(msgs))
	for _, m := range msgs {
		n := s.j.attempts[m.uidl]
		switch {
		case n >= attemptLimit && !s.release:
			continue
		case n >= attemptLimit:
			retried++
		}
		out = append(out, m)
	}
	slices.SortStableFunc(out, func(a, b message) int { return s.j.attempts[a.uidl] - s.j.attempts[b.uidl] })
	if retried > 0 {
		event.Emit(&s.f.Log, event.SetAsideRetried).Str("account", s.a.Name).Int("count", retried).
			Msg("retrieve-now: trying the messages set aside once more, after the others")
	}
	return out
}

// setAside counts the listed messages that are set aside now.
func (s *session) setAside() int {
	n := 0
	for _, m := range s.listed {
		if s.j.attempts[m.uidl] >= attemptLimit {
			n++
		}
	}
	return n
}

// release has the next poll of account name try its messages set aside
// once more (Retrieve Now).
func (f *Fetcher) release(name string) {
	st := f.state(name)
	st.mu.Lock()
	st.release = true
	st.mu.Unlock()
}

// takeRelease reports whether the next poll of account name is to try its
// messages set aside, and clears it.
func (f *Fetcher) takeRelease(name string) bool {
	st := f.state(name)
	st.mu.Lock()
	defer st.mu.Unlock()
	r := st.release
	st.release = false
	return r
}
