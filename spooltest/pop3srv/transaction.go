package pop3srv

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// transaction handles the TRANSACTION state (RFC 1939 §5, §7).
func (c *session) transaction(cmd, arg string) error {
	switch cmd {
	case "STAT":
		n, size := c.drop.stat()
		c.ok("%d %d", n, size)
	case "LIST":
		c.list(arg)
	case "UIDL":
		c.uidl(arg)
	case "RETR":
		return c.retr(arg)
	case "TOP":
		return c.top(arg)
	case "DELE":
		c.dele(arg)
	case "NOOP":
		c.ok("")
	case "RSET":
		c.drop.reset()
		n, size := c.drop.stat()
		c.ok("maildrop has %d messages (%d octets)", n, size)
	default:
		c.err("unknown command in TRANSACTION state: %s", cmd)
	}
	return nil
}

// list answers LIST [n] with "n size" (RFC 1939 §5).
func (c *session) list(arg string) {
	c.scanList(arg, func(n int, m *message) string {
		return fmt.Sprintf("%d %d", n, m.size)
	})
}

// uidl answers UIDL [n] with "n unique-id" (RFC 1939 §7).
func (c *session) uidl(arg string) {
	if c.s.NoUIDL {
		c.err("UIDL not supported")
		return
	}
	c.scanList(arg, func(n int, m *message) string {
		return fmt.Sprintf("%d %s", n, m.uid)
	})
}

// scanList is the shared shape of LIST and UIDL: with an argument a single
// +OK line, without one a multi-line listing of the undeleted messages.
func (c *session) scanList(arg string, format func(int, *message) string) {
	if arg != "" {
		m, n, msg := c.drop.get(arg)
		if m == nil {
			c.err("%s", msg)
			return
		}
		c.ok("%s", format(n, m))
		return
	}
	var lines []string
	for i := range c.drop.msgs {
		if m := &c.drop.msgs[i]; !m.deleted {
			lines = append(lines, format(i+1, m))
		}
	}
	n, size := c.drop.stat()
	c.ok("%d messages (%d octets)", n, size)
	c.lines(lines)
}

// retr sends message n (RFC 1939 §5, RETR).
func (c *session) retr(arg string) error {
	m, n, msg := c.drop.get(arg)
	if m == nil {
		c.err("%s", msg)
		return nil
	}
	switch c.s.broken(filepath.Base(m.path)) {
	case BreakErr:
		c.err("unable to read message file")
		return nil
	case BreakCut:
		return c.sendHalf(m)
	case BreakEndless:
		return c.sendEndless()
	}
	sent, err := c.sendMessage(m, n, -1)
	if sent {
		c.s.n.retrs.Add(1)
	}
	return err
}

// top sends the header and the first k body lines of message n
// (RFC 1939 §7, TOP).
func (c *session) top(arg string) error {
	num, ks, _ := strings.Cut(arg, " ")
	k, err := strconv.Atoi(ks)
	if err != nil || k < 0 {
		c.err("usage: TOP msg n, n >= 0")
		return nil
	}
	m, n, msg := c.drop.get(num)
	if m == nil {
		c.err("%s", msg)
		return nil
	}
	_, err = c.sendMessage(m, n, k)
	return err
}

// dele marks message n; the file goes only in the UPDATE state (RFC 1939 §6).
func (c *session) dele(arg string) {
	m, n, msg := c.drop.get(arg)
	if m == nil {
		c.err("%s", msg)
		return
	}
	m.deleted = true
	c.ok("message %d marked for deletion", n)
}
