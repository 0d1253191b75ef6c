package fetch

import (
	"context"

	"example.org/popspool/fetchd/pop3"
)

// aheadMax is the largest listed size of a message whose RETR is sent
// ahead of the one in hand. Past it the round trip saved is nothing
// beside the transfer, and a stop would wait for a large message the
// session had not begun.
const aheadMax = 1 << 20

// sendAhead sends RETR for the message in hand, unless it is in flight
// already, and for the next message the session will download, so that
// the server sends it while this one is written to disk
// (pop3.Client.Prefetch: only with PIPELINING, and one ahead, MaxAhead;
// else Retr sends its own). A message is sent ahead
// only when nothing can come between: no other command comes before it
// (messages in between are only deleted again, which needs no command
// until the end), it fits the poll's limits with those before it, it is
// not large, and fetchd is not stopping.
func (s *session) sendAhead(stop context.Context, m message) error {
	if !s.c.Ahead(m.num) {
		if _, err := s.c.Prefetch(m.num); err != nil {
			return err
		}
	}
	if stop.Err() != nil {
		return nil
	}
	for _, next := range s.nextDownloads() {
		if s.c.Ahead(next.num) {
			continue
		}
		if sent, err := s.c.Prefetch(next.num); !sent || err != nil {
			return err
		}
	}
	return nil
}

// nextDownloads returns the messages after the one in hand that the
// session will download next, in order, as long as no other command
// comes first: messages only deleted again are passed over; one over
// max_size (TOP), a large one, or one past the poll's limits ends the
// list.
func (s *session) nextDownloads() []message {
	var out []message
	l := s.limit
	for _, m := range s.queue[s.at+1:] {
		switch {
		case len(out) == pop3.MaxAhead-1 || s.tooBig(m): // the one in hand takes a place
			return out
		case !s.needsDownload(m):
			continue
		case m.size > aheadMax || !s.fitsIn(&l, m):
			return out
		}
		l.count(m)
		out = append(out, m)
	}
	return out
}
