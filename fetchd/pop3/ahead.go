package pop3

import (
	"fmt"
	"strconv"
)

// MaxAhead is how many RETRs may be in flight before their replies are
// read: the message being read and the next one. More would hide more
// of a batch's sync, but would blame the wrong message for a cut: a
// server that drops the connection with commands unread sends a TCP
// reset, which discards what the client has received and not yet read.
// With one ahead, the next RETR goes out only once the message before
// the one in hand has been read whole, so a reset can only cost the
// message in hand or the next, the one the server was sending when it
// cut (docs/design-notes.md, "RETRs sent ahead").
const MaxAhead = 2

// Prefetch sends RETR n now, without reading its reply, so that the
// server sends message n while the client still reads (and writes to
// disk) the messages sent ahead before it: one round trip less a
// message. It sends only when CAPA listed PIPELINING (RFC 2449 §6.6) and
// fewer than MaxAhead RETRs are in flight, and reports whether it sent.
//
// The replies are read in order: the next Retr must be of the first
// message in flight, and any other command while a RETR is in flight
// fails without being sent. A RETR in flight has no effect on the
// maildrop; closing the connection without reading it is always safe.
func (c *Client) Prefetch(n int) (bool, error) {
	if err := checkNum("RETR", n); err != nil {
		return false, err
	}
	if len(c.ahead) >= MaxAhead || c.opt.NoPipelining {
		return false, nil
	}
	line := "RETR " + strconv.Itoa(n)
	if err := c.alive(line); err != nil {
		return false, err
	}
	if len(c.ahead) == 0 {
		caps, err := c.knownCaps()
		if err != nil {
			return false, err
		}
		if !caps.Pipelining {
			return false, nil
		}
	}
	if err := c.setDeadline(); err != nil {
		return false, c.fatal(line, err)
	}
	if err := c.send(line, line, line); err != nil {
		return false, err
	}
	if err := c.flush(line); err != nil {
		return false, err
	}
	c.ahead = append(c.ahead, n)
	return true, nil
}

// Ahead reports whether RETR n is in flight (Prefetch) and not yet read.
func (c *Client) Ahead(n int) bool {
	for _, a := range c.ahead {
		if a == n {
			return true
		}
	}
	return false
}

// InFlight is how many RETRs are in flight (Prefetch), not yet read.
func (c *Client) InFlight() int { return len(c.ahead) }

// inOrder refuses a command while RETRs are in flight: its reply would
// be read as theirs. Only Retr of the first one in flight may go on.
func (c *Client) inOrder(name string) error {
	if len(c.ahead) == 0 {
		return nil
	}
	return fmt.Errorf("pop3 %s: not sent, the reply to RETR %d (sent ahead) must be read first", name, c.ahead[0])
}

// takeAhead reports whether RETR n was sent ahead and is the next reply
// to read, and takes it off the list.
func (c *Client) takeAhead(n int) bool {
	if len(c.ahead) == 0 || c.ahead[0] != n {
		return false
	}
	c.ahead = c.ahead[1:]
	return true
}
