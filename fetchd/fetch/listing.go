package fetch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"example.org/popspool/fetchd/pop3"
	"example.org/popspool/shared/event"
)

type message struct {
	num  int
	uidl string
	size int64
}

func listedSet(msgs []message) map[string]bool {
	m := make(map[string]bool, len(msgs))
	for _, x := range msgs {
		m[x.uidl] = true
	}
	return m
}

// listing returns the messages with their UIDLs and sizes. A server
// without UIDL gets a digest of each message's header instead.
func (s *session) listing() ([]message, error) {
	var sizes []pop3.MsgInfo
	var uids []pop3.MsgUID
	var uerr error
	err := s.within(s.listingBudget(), "the listings", func() (err error) {
		sizes, err = s.c.List()
		if err = s.partialListing(err); err != nil {
			return classify(s.protocolError(fmt.Errorf("LIST: %w", err)), failOther)
		}
		uids, uerr = s.c.UIDL()
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = s.partialListing(uerr)
	var pe *pop3.Error
	if errors.As(err, &pe) {
		event.Emit(&s.f.Log, event.NoUIDL).Str("account", s.a.Name).Msg("identifying messages by a digest of their header")
		return s.digests(sizes)
	}
	if err != nil && (!errors.Is(err, pop3.ErrProtocol) || s.c.Err() != nil) {
		return nil, classify(s.protocolError(fmt.Errorf("UIDL: %w", err)), failOther)
	}
	if err != nil {
		event.Emit(&s.f.Log, event.UIDLRejected).Str("account", s.a.Name).Err(err).Msg("not fetching: messages could not be told apart safely")
		return nil, classify(fmt.Errorf("UIDL: %w", err), failOther)
	}
	size := make(map[int]int64, len(sizes))
	for _, m := range sizes {
		size[m.Num] = m.Size
	}
	msgs := make([]message, 0, len(uids))
	for _, u := range uids {
		msgs = append(msgs, message{num: u.Num, uidl: u.UID, size: size[u.Num]})
	}
	s.stats.Listed = len(msgs)
	return msgs, nil
}

// digests names each message by a digest of its header and size (TOP n 0,
// RFC 1939 §7) for servers without UIDL. Two messages with the same
// header and size are named by a digest of their whole content instead
// (RETR), so that one is never taken for the other; only identical copies
// share a name, told apart by their order.
func (s *session) digests(sizes []pop3.MsgInfo) ([]message, error) {
	msgs := make([]message, 0, len(sizes))
	count := map[string]int{}
	for _, m := range sizes {
		h := sha256.New()
		what := fmt.Sprintf("TOP %d 0", m.Num)
		if err := s.within(s.retrBudget(message{size: m.Size}), what, func() error {
			_, err := s.c.Top(m.Num, 0, h)
			return err
		}); err != nil {
			return nil, classify(s.protocolError(fmt.Errorf("%s: %w", what, err)), failOther)
		}
		fmt.Fprintf(h, "\x00%d", m.Size)
		uid := "sha256-" + hex.EncodeToString(h.Sum(nil)[:16])
		count[uid]++
		msgs = append(msgs, message{num: m.Num, uidl: uid, size: m.Size})
	}
	seen := map[string]int{}
	for i, m := range msgs {
		if count[m.uidl] < 2 {
			continue
		}
		h := sha256.New()
		what := fmt.Sprintf("RETR %d", m.num)
		if err := s.within(s.retrBudget(m), what, func() error {
			_, err := s.c.Retr(m.num, h)
			return err
		}); err != nil {
			return nil, classify(s.protocolError(fmt.Errorf("%s: %w", what, err)), failOther)
		}
		uid := "sha256full-" + hex.EncodeToString(h.Sum(nil)[:16])
		seen[uid]++
		msgs[i].uidl = fmt.Sprintf("%s-%d", uid, seen[uid])
	}
	s.stats.Listed = len(msgs)
	return msgs, nil
}

// partialListing turns a listing cut at max_listing into a partial session: the first
// max_listing messages are handled now, the others in later sessions once
// these are gone, and the journal forgets nothing (event 2035, once per
// session).
func (s *session) partialListing(err error) error {
	if !errors.Is(err, pop3.ErrTruncated) {
		return err
	}
	if !s.partial {
		event.Emit(&s.f.Log, event.ListingCut).Str("account", s.a.Name).Int("max_listing", s.a.MaxListing).Err(err).
			Msg("the mailbox lists more messages than max_listing; this session takes the first ones")
	}
	s.partial = true
	return nil
}
