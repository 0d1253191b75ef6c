package fetch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"example.org/popspool/fetchd/pop3"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// maxStubHeader bounds the header kept for a stub; a longer one is cut at
// a line end (and the stub says so).
const maxStubHeader = 256 << 10

// oversize handles a message over max_size: it stays on the server, the
// rest of the mailbox still flows, and with oversize = "headers" the
// recipient gets its header and a notice instead (the message itself is
// never deleted).
func (s *session) oversize(m message) error {
	max := int64(s.a.MaxSize)
	hash := uidlHash(m.uidl)
	if s.a.Oversize != "headers" {
		s.stats.Skipped++
		event.Emit(&s.f.Log, event.TooBig).Str("account", s.a.Name).Int64("size", m.size).Int64("max_size", max).
			Str("uidl_hash", hash).Msg("left on the server")
		return nil
	}
	id, err := s.stub(m)
	if err != nil || id == "" {
		return err
	}
	s.stats.Stubbed++
	event.Emit(&s.f.Log, event.OversizeStub).Str("account", s.a.Name).Str("id", id).Int64("size", m.size).
		Int64("max_size", max).Str("uidl_hash", hash).Msg("left on the server; its header and a notice go to the recipient")
	return s.record(m, id, true)
}

// stub writes and seals tmp/fetchd/<id>.part: the trace header, the
// message's own header from TOP n 0 (RFC 1939 §7) with its MIME fields
// renamed, and a plain-text notice as the body. It returns "" and no error
// when the server cannot give the header (no TOP): the message is then
// just left on the server.
func (s *session) stub(m message) (string, error) {
	var hdr capped
	hdr.max = maxStubHeader
	if err := s.within(s.retrBudget(message{size: maxStubHeader}), fmt.Sprintf("TOP %d 0", m.num), func() error {
		_, err := s.c.Top(m.num, 0, &hdr)
		return err
	}); err != nil {
		var pe *pop3.Error
		if !errors.As(err, &pe) {
			return "", s.protocolError(fmt.Errorf("TOP %d 0: %w", m.num, err))
		}
		s.stats.Skipped++
		event.Emit(&s.f.Log, event.TooBig).Str("account", s.a.Name).Int64("size", m.size).Int64("max_size", int64(s.a.MaxSize)).
			Str("uidl_hash", uidlHash(m.uidl)).Err(err).Msg("left on the server; no header stored: the server refused TOP")
		return "", nil
	}
	id := spool.NewID()
	p, err := s.f.S.Create(id)
	if err != nil {
		return "", s.spoolError(err)
	}
	w := bufio.NewWriter(p)
	w.WriteString(s.f.traceHeader(s.a, m.uidl, id))
	w.Write(stubMessage(hdr.b.Bytes(), hdr.cut, m.size, int64(s.a.MaxSize), s.a.Name, s.a.Username, s.a.Server))
	if err := w.Flush(); err != nil {
		p.Abort()
		return "", s.spoolError(err)
	}
	if err := p.Seal(); err != nil {
		os.Remove(p.Name())
		return "", s.spoolError(err)
	}
	return id, nil
}

// capped keeps the first max bytes written and drops the rest.
type capped struct {
	b   bytes.Buffer
	max int
	cut bool
}

func (c *capped) Write(p []byte) (int, error) {
	n := len(p)
	if room := c.max - c.b.Len(); n > room {
		c.cut = true
		p = p[:max(room, 0)]
	}
	c.b.Write(p)
	return n, nil
}

// renamed are the header fields that describe the body: the stub's body
// is a new one, so the originals are kept under X-Popspool-Original-.
var renamed = []string{"mime-version", "content-type", "content-transfer-encoding", "content-disposition"}

// stubMessage builds the stub from the original header (as TOP n 0 gave
// it, possibly cut at max): every line ends in CRLF, the body fields are
// renamed, and a notice in the body says what happened and what to do.
func stubMessage(header []byte, cut bool, size, max int64, account, user, server string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "X-Popspool-Oversize: %d octets; max_size %d; left on the server\r\n", size, max)
	if cut {
		b.WriteString("X-Popspool-Header-Truncated: yes\r\n")
	}
	for _, line := range headerLines(header, cut) {
		if name, _, ok := strings.Cut(line, ":"); ok && line[0] != ' ' && line[0] != '\t' && isRenamed(name) {
			b.WriteString("X-Popspool-Original-")
		}
		b.WriteString(line + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	fmt.Fprintf(&b, "This message was not delivered in full.\r\n\r\n"+
		"It is %d bytes, more than the %d bytes (max_size) allowed for the\r\n"+
		"mailbox %q (%s on %s). The message is still on that server;\r\n"+
		"only its header was fetched: it is above this notice.\r\n\r\n"+
		"To receive it, ask the administrator to raise max_size for this mailbox\r\n"+
		"(it is then fetched at the next poll), or read it with a mail program\r\n"+
		"that connects to the mailbox directly.\r\n\r\n-- popspool fetchd\r\n",
		size, max, account, user, server)
	return b.Bytes()
}

// headerLines splits a header into lines without their line ends, up to
// the empty line that ends it. A header cut short loses its partial last
// line.
func headerLines(header []byte, cut bool) []string {
	text := string(header)
	if cut {
		if i := strings.LastIndexByte(text, '\n'); i >= 0 {
			text = text[:i+1]
		} else {
			text = ""
		}
	}
	var out []string
	for _, line := range strings.SplitAfter(text, "\n") {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		out = append(out, line)
	}
	return out
}

func isRenamed(name string) bool {
	name = strings.ToLower(strings.TrimSpace(name))
	for _, r := range renamed {
		if name == r {
			return true
		}
	}
	return false
}
