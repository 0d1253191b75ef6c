package pop3

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

const (
	// maxMsgNum bounds message numbers; no maildrop holds 2^31 messages.
	maxMsgNum = math.MaxInt32
	// maxListLines bounds a LIST or UIDL listing read to its end; past
	// Options.MaxListing entries the lines are read and dropped.
	maxListLines = 1 << 22
	// DefaultMaxListing is Options.MaxListing's default.
	DefaultMaxListing = 100_000
	// maxCapaLines bounds a CAPA listing.
	maxCapaLines = 256
	// maxUIDLen is RFC 1939 §7's limit on a unique-id.
	maxUIDLen = 70
)

// ErrTruncated marks a listing longer than Options.MaxListing: the
// entries returned are its first ones, by message number.
var ErrTruncated = errors.New("listing longer than the limit; the rest dropped")

// MsgInfo is one line of a LIST scan listing.
type MsgInfo struct {
	Num  int
	Size int64 // octets, as the server counts them
}

// MsgUID is one line of a UIDL unique-id listing.
type MsgUID struct {
	Num int
	UID string // 1 to 70 octets in 0x21-0x7E; may contain '/' and other punctuation
}

// Caps is the server's CAPA reply (RFC 2449 §6).
type Caps struct {
	UIDL, TOP, STLS, Pipelining, User, RespCodes bool
	SASL                                         []string // mechanisms, as listed
	Expire                                       string   // EXPIRE argument(s): "NEVER", "30", "30 USER"
	LoginDelay                                   string   // LOGIN-DELAY argument(s)
	Implementation                               string
	Raw                                          []string // every line, control characters replaced by '?'
}

// List returns the scan listing of all messages not marked deleted
// (RFC 1939 §5 LIST). A malformed line, a size that is not a plain
// non-negative number or a message number listed twice is an error wrapping
// ErrProtocol that quotes the line; the session stays usable.
func (c *Client) List() ([]MsgInfo, error) {
	var out []MsgInfo
	seen := make(map[int]bool)
	err := c.listing("LIST", func(no int, line []byte) error {
		if no > c.maxListing() {
			return nil
		}
		m, err := parseScan(string(line), seen)
		if err != nil {
			return fmt.Errorf("%w: line %d %s: %w", ErrProtocol, no, quote(line), err)
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// UIDL returns the unique-id listing of all messages not marked deleted
// (RFC 1939 §7 UIDL). UIDs are checked as RFC 1939 requires: 1 to 70 octets
// in 0x21-0x7E, so '/' and '.' are allowed (callers must encode UIDs before
// using them as file names). A line breaking that, a bad or repeated message
// number, or a UID given to two messages is an error wrapping ErrProtocol
// that quotes the line; the session stays usable.
func (c *Client) UIDL() ([]MsgUID, error) {
	var out []MsgUID
	seen, uids := make(map[int]bool), make(map[string]int)
	err := c.listing("UIDL", func(no int, line []byte) error {
		if no > c.maxListing() {
			return nil
		}
		m, err := parseUIDLine(string(line), seen, uids)
		if err != nil {
			return fmt.Errorf("%w: line %d %s: %w", ErrProtocol, no, quote(line), err)
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// listing sends cmd and reads its multi-line reply through fn.
func (c *Client) listing(cmd string, fn func(no int, line []byte) error) error {
	if _, err := c.cmd(cmd); err != nil {
		return err
	}
	n := 0
	err := c.readListing(cmd, maxListLines, func(no int, line []byte) error {
		n = no
		return fn(no, line)
	})
	if err == nil && n > c.maxListing() {
		return fmt.Errorf("pop3 %s: %w: %d entries, %d kept", cmd, ErrTruncated, n, c.maxListing())
	}
	return err
}

func (c *Client) maxListing() int {
	if c.opt.MaxListing > 0 {
		return c.opt.MaxListing
	}
	return DefaultMaxListing
}

// parseScan parses "nn size [anything]" (RFC 1939 §5: nothing is required of
// what follows the size).
func parseScan(line string, seen map[int]bool) (MsgInfo, error) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return MsgInfo{}, errors.New("want \"number size\"")
	}
	n, err := parseMsgNum(f[0], seen)
	if err != nil {
		return MsgInfo{}, err
	}
	size, ok := parseUint(f[1])
	if !ok {
		return MsgInfo{}, fmt.Errorf("size %q is not a non-negative number", f[1])
	}
	return MsgInfo{Num: n, Size: size}, nil
}

// parseUIDLine parses "nn uid" (RFC 1939 §7: a single space between).
func parseUIDLine(line string, seen map[int]bool, uids map[string]int) (MsgUID, error) {
	num, uid, ok := strings.Cut(line, " ")
	if !ok {
		return MsgUID{}, errors.New("want \"number unique-id\"")
	}
	if err := checkUID(uid); err != nil {
		return MsgUID{}, err
	}
	n, err := parseMsgNum(num, seen)
	if err != nil {
		return MsgUID{}, err
	}
	// RFC 1939 §7: a unique-id is unique in the maildrop. Two messages with
	// one UID would make the second look already fetched, and then deleted.
	if prev, dup := uids[uid]; dup {
		return MsgUID{}, fmt.Errorf("unique-id also given to message %d", prev)
	}
	uids[uid] = n
	return MsgUID{Num: n, UID: uid}, nil
}

// checkUID applies RFC 1939 §7: "The unique-id of a message ... consists of
// one to 70 characters in the range 0x21 to 0x7E".
func checkUID(uid string) error {
	if len(uid) == 0 || len(uid) > maxUIDLen {
		return fmt.Errorf("unique-id is %d octets, want 1 to %d", len(uid), maxUIDLen)
	}
	for i := 0; i < len(uid); i++ {
		if uid[i] < 0x21 || uid[i] > 0x7E {
			return fmt.Errorf("unique-id has octet 0x%02X at %d, outside 0x21-0x7E", uid[i], i)
		}
	}
	return nil
}

// parseMsgNum parses a message number (RFC 1939 §3: 1-based) and refuses
// one already in seen.
func parseMsgNum(s string, seen map[int]bool) (int, error) {
	v, ok := parseUint(s)
	if !ok || v < 1 || v > maxMsgNum {
		return 0, fmt.Errorf("message number %q is not a number from 1 to %d", s, maxMsgNum)
	}
	n := int(v)
	if seen[n] {
		return 0, fmt.Errorf("message number %d listed twice", n)
	}
	seen[n] = true
	return n, nil
}

// Capabilities sends CAPA (RFC 2449 §5). A server that answers -ERR does not
// support CAPA: the result is an empty Caps and no error. The result is kept
// for DeleMany until the state changes (login, STLS).
func (c *Client) Capabilities() (Caps, error) {
	if _, err := c.cmd("CAPA"); err != nil {
		var perr *Error
		if errors.As(err, &perr) {
			c.caps = &Caps{}
			return Caps{}, nil
		}
		return Caps{}, err
	}
	var lines []string
	err := c.readListing("CAPA", maxCapaLines, func(_ int, line []byte) error {
		lines = append(lines, clean(line))
		return nil
	})
	if err != nil {
		return Caps{}, err
	}
	caps := parseCaps(lines)
	c.caps = &caps
	return caps, nil
}

// parseCaps interprets CAPA lines; tags are case-insensitive (RFC 2449 §6)
// and unknown tags are kept only in Raw.
func parseCaps(lines []string) Caps {
	caps := Caps{Raw: lines}
	for _, line := range lines {
		tag, args, _ := strings.Cut(line, " ")
		args = strings.TrimSpace(args)
		switch strings.ToUpper(tag) {
		case "UIDL":
			caps.UIDL = true
		case "TOP":
			caps.TOP = true
		case "STLS":
			caps.STLS = true
		case "PIPELINING":
			caps.Pipelining = true
		case "USER":
			caps.User = true
		case "RESP-CODES":
			caps.RespCodes = true
		case "SASL":
			caps.SASL = strings.Fields(args)
		case "EXPIRE":
			caps.Expire = args
		case "LOGIN-DELAY":
			caps.LoginDelay = args
		case "IMPLEMENTATION":
			caps.Implementation = args
		}
	}
	return caps
}

// knownCaps returns the capabilities of the current state, asking with CAPA
// if they are not known.
func (c *Client) knownCaps() (Caps, error) {
	if c.caps != nil {
		return *c.caps, nil
	}
	return c.Capabilities()
}
