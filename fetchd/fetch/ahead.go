package fetch

import "context"

// aheadMax is the largest listed size of a message whose RETR is sent
// ahead of the one in hand. Past it the round trip saved is nothing
// beside the transfer, and a stop would wait for a large message the
// session had not begun.
const aheadMax = 1 << 20

// sendAhead sends RETR for the message in hand, unless it is in flight
// already, and for the next message the session will download, so that
// the server sends it while this one is written to disk
// (pop3.Client.Prefetch: only with PIPELINING; else Retr sends its own).
// A message is sent ahead only when nothing can come between: no other
// command comes before it (messages in between are only deleted again,
// which needs no command until the end), it fits the poll's limits, it
// is not large, and fetchd is not stopping.
func (s *session) sendAhead(stop context.Context, m message) error {
	if !s.c.Ahead(m.num) {
		if _, err := s.c.Prefetch(m.num); err != nil {
			return err
		}
	}
	next, ok := s.nextDownload()
	if !ok || stop.Err() != nil || s.c.Ahead(next.num) {
		return nil
	}
	_, err := s.c.Prefetch(next.num)
	return err
}

// nextDownload returns the message after the one in hand that the
// session will download next, if no other command comes first: messages
// only deleted again are passed over; one over max_size (TOP), a large
// one, or one past the poll's limits ends the search. One is enough:
// pop3.MaxAhead allows one ahead of the message in hand.
func (s *session) nextDownload() (message, bool) {
	for _, m := range s.queue[s.at+1:] {
		switch {
		case s.tooBig(m):
			return message{}, false
		case !s.needsDownload(m):
			continue
		case m.size > aheadMax || !s.fitsIn(&s.limit, m):
			return message{}, false
		}
		return m, true
	}
	return message{}, false
}
