package fetch

import "example.org/popspool/shared/event"

// pollLimit applies an account's max_messages and max_bytes: how much one
// poll downloads. The messages past a limit stay on the server, untouched
// (no RETR, no DELE), for the next polls, which take them in the order
// listed; the listing itself was whole, so the journal forgets only what
// the server no longer lists.
type pollLimit struct {
	messages int   // downloads begun this poll
	bytes    int64 // their listed sizes
	reached  bool  // a limit stopped the downloads (event 2046, once)
}

// wants reports whether message m, which would be downloaded, fits in the
// poll's limits, and counts it if so. The first message of a poll always
// fits, however large, so that one big message cannot stall a mailbox.
func (s *session) wants(m message) bool {
	l := &s.limit
	if l.reached {
		return false
	}
	if !s.fitsIn(l, m) {
		l.reached = true
		event.Emit(&s.f.Log, event.PollLimit).Str("account", s.a.Name).Int("taken", l.messages).Int64("taken_bytes", l.bytes).
			Int("max_messages", s.a.MaxMessages).Int64("max_bytes", int64(s.a.MaxBytes)).
			Msg("this poll stopped at the account's limit; the other messages stay on the server for the next polls")
		return false
	}
	l.count(m)
	return true
}

// fitsIn reports whether message m would fit in limit l, counting
// nothing (sendAhead asks it of the message after the one in hand).
func (s *session) fitsIn(l *pollLimit, m message) bool {
	overCount := s.a.MaxMessages > 0 && l.messages >= s.a.MaxMessages
	overBytes := s.a.MaxBytes > 0 && l.messages > 0 && l.bytes+m.size > int64(s.a.MaxBytes)
	return !l.reached && !overCount && !overBytes
}

func (l *pollLimit) count(m message) {
	l.messages++
	l.bytes += m.size
}

// needsDownload reports whether one(m) would download m, as opposed to
// only deleting it again or leaving it over max_size (whose header, with
// oversize = "headers", costs one TOP and is not counted).
func (s *session) needsDownload(m message) bool {
	if s.tooBig(m) {
		return false
	}
	rec, known := s.j.seen[m.uidl]
	return !known || rec.stub
}
