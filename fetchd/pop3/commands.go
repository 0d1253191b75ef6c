package pop3

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Quit sends QUIT, which makes the server remove the messages marked with
// DELE (RFC 1939 §6), reads the reply and closes the connection. An -ERR
// reply ("some deleted messages not removed") is returned as *Error.
func (c *Client) Quit() error {
	_, err := c.cmd("QUIT")
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	return err
}

// Noop sends NOOP (RFC 1939 §5).
func (c *Client) Noop() error {
	_, err := c.cmd("NOOP")
	return err
}

// Rset unmarks all messages marked with DELE (RFC 1939 §5).
func (c *Client) Rset() error {
	_, err := c.cmd("RSET")
	return err
}

// Dele marks message n for deletion at QUIT (RFC 1939 §5).
func (c *Client) Dele(n int) error {
	if err := checkNum("DELE", n); err != nil {
		return err
	}
	_, err := c.cmd("DELE " + strconv.Itoa(n))
	return err
}

// Stat returns the number of messages and the maildrop size in octets
// (RFC 1939 §5: "+OK nn mm", anything after mm is ignored).
func (c *Client) Stat() (count int, size int64, err error) {
	text, err := c.cmd("STAT")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(text)
	if len(f) < 2 {
		return 0, 0, c.fatal("STAT", fmt.Errorf("%w: reply %q is not \"+OK count size\"", ErrProtocol, text))
	}
	n, ok1 := parseUint(f[0])
	size, ok2 := parseUint(f[1])
	if !ok1 || !ok2 || n > maxMsgNum {
		return 0, 0, c.fatal("STAT", fmt.Errorf("%w: reply %q is not \"+OK count size\"", ErrProtocol, text))
	}
	return int(n), size, nil
}

// pipelineBatch is how many DELE commands DeleMany sends before reading
// replies. RFC 2449 §6.6 asks pipelining clients not to fill the TCP
// window; 32 commands and their replies take about 2 KB.
const pipelineBatch = 32

// DeleMany marks the given messages for deletion at QUIT. If CAPA lists
// PIPELINING (RFC 2449 §6.6) the DELE commands are sent in batches, else one
// by one; CAPA is sent first if the capabilities of the current state are
// not known. An -ERR for one message does not stop the others; the first
// error is returned (an *Error naming "DELE n"). A network or protocol error
// stops at once and loses the session.
func (c *Client) DeleMany(nums []int) error {
	for _, n := range nums {
		if err := checkNum("DELE", n); err != nil {
			return err
		}
	}
	caps, err := c.knownCaps()
	if err != nil {
		return err
	}
	size := 1
	if caps.Pipelining && !c.opt.NoPipelining {
		size = pipelineBatch
	}
	var first error
	for len(nums) > 0 {
		batch := nums[:min(size, len(nums))]
		nums = nums[len(batch):]
		err := c.deleBatch(batch)
		var perr *Error
		if err != nil && !errors.As(err, &perr) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// deleBatch sends DELE for each of nums in one write and then reads all the
// replies, returning the first -ERR as *Error.
func (c *Client) deleBatch(nums []int) error {
	if err := c.usable("DELE"); err != nil {
		return err
	}
	if err := c.setDeadline(); err != nil {
		return c.fatal("DELE", err)
	}
	for _, n := range nums {
		line := "DELE " + strconv.Itoa(n)
		if err := c.send(line, line, line); err != nil {
			return err
		}
	}
	if err := c.flush("DELE"); err != nil {
		return err
	}
	var first error
	for _, n := range nums {
		_, err := c.readStatus("DELE " + strconv.Itoa(n))
		var perr *Error
		if err != nil && !errors.As(err, &perr) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}
