package smtpc

import (
	"bufio"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// pipelined runs the transaction with PIPELINING (RFC 2920) when the
// server offers it (and Options.NoPipelining does not say no): MAIL, every RCPT and DATA leave in one write and
// their replies are read in order; after a 354 the body and the final
// dot leave, and the reply to the dot is read. Two round trips a message
// instead of three plus one a recipient, and as many fewer reads and
// writes for the server. The verdicts are those the step-by-step
// transaction gives for the same replies (TestPipelinedSameVerdicts).
func (c *Conn) pipelined(t *tx, from string, opts *smtp.MailOptions, body io.Reader) error {
	rcpts := t.open()
	if _, err := c.w.Write(c.commands(from, opts, rcpts, t.orcpt)); err != nil {
		return c.fail(&Error{Op: "MAIL", Err: err})
	}
	mail, err := c.reply("MAIL", c.o.Mail)
	if err != nil {
		return err
	}
	if !mail.OK {
		t.setOpen(mail)
		if c.closing(mail) {
			return nil
		}
	}
	for _, r := range rcpts {
		s, err := c.reply("RCPT", c.o.Rcpt)
		if err != nil {
			return err
		}
		switch {
		case !mail.OK: // each RCPT was refused for want of a MAIL
		case s.OK:
			t.accepted = append(t.accepted, r)
		default:
			t.set(r, s)
		}
		if c.closing(s) {
			t.setOpen(s)
			return nil
		}
	}
	data, err := c.reply("DATA", c.o.DataInit)
	if err != nil {
		return err
	}
	return c.pipelinedData(t, mail.OK, data, body)
}

// pipelinedData acts on DATA's reply: the body if it was accepted and a
// recipient is, else the end of the transaction.
func (c *Conn) pipelinedData(t *tx, mailed bool, data Status, body io.Reader) error {
	switch {
	case data.Code == 354 && len(t.accepted) > 0:
		return c.pipelinedBody(t, body)
	case data.Code == 354:
		// DATA accepted with no recipient: a lone dot ends it (RFC 2920
		// §3.1), and its reply says nothing about anyone.
		if _, err := c.w.Write([]byte(".\r\n")); err != nil {
			return c.fail(&Error{Op: "DATA", Err: err})
		}
		if _, err := c.reply("DATA", c.o.FinalDot); err != nil { // nothing can have been delivered
			return err
		}
	case len(t.accepted) > 0:
		t.setOpen(data)
		if c.closing(data) {
			return nil
		}
	case c.closing(data):
		return nil
	}
	if mailed {
		c.abort() // MAIL was accepted: RSET ends the transaction
	}
	return nil
}

// pipelinedBody sends the body and the final dot and reads the verdict:
// one for all (SMTP) or one for each accepted recipient (LMTP).
func (c *Conn) pipelinedBody(t *tx, body io.Reader) error {
	c.w.beginData()
	st, err := c.stream(body)
	if err == nil {
		st.end()
		if _, werr := c.w.Write(st.out); werr != nil {
			err = c.fail(&Error{Op: "DATA", Err: werr})
		}
	}
	c.out = st.out[:0]
	c.w.endData()
	if err != nil {
		return err
	}
	if !c.lmtp {
		s, err := c.reply("dot", c.o.FinalDot)
		if err == nil {
			t.setOpen(s)
			c.closing(s)
		}
		return err
	}
	var gone *Status
	for _, r := range t.accepted {
		s, err := c.reply("dot", c.o.FinalDot)
		if err != nil {
			return err
		}
		t.set(r, s)
		if s.Code == 421 {
			gone = &s
		}
	}
	if gone != nil {
		c.closing(*gone)
	}
	return nil
}

// reply reads one reply within timeout. err is only a failure of the
// connection (I/O, timeout, a garbled reply): it then holds an *Error,
// with AfterDot for the reply to the final dot, and the connection is
// closed.
func (c *Conn) reply(op string, timeout time.Duration) (Status, error) {
	if err := c.w.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return Status{}, c.fail(&Error{Op: op, Err: err})
	}
	if c.r == nil {
		c.r = textproto.NewReader(bufio.NewReader(c.w))
	}
	code, msg, err := c.r.ReadResponse(0) // 0: any code is a reply
	if err != nil {
		return Status{}, c.fail(&Error{Op: op, AfterDot: op == "dot" && c.w.dotSent(), Err: err})
	}
	return replyToStatus(code, msg), nil
}

// commands are MAIL, a RCPT for each recipient and DATA, as go-smtp
// writes them for the same options (TestPipelinedCommandsAreGoSMTPs).
func (c *Conn) commands(from string, opts *smtp.MailOptions, rcpts []string, orcpt map[string]string) []byte {
	var b strings.Builder
	b.WriteString("MAIL FROM:<" + from + ">")
	if c.offers("8BITMIME") {
		b.WriteString(" BODY=8BITMIME")
	}
	if c.offers("SIZE") && opts.Size != 0 {
		b.WriteString(" SIZE=" + strconv.FormatInt(opts.Size, 10))
	}
	if opts.UTF8 {
		b.WriteString(" SMTPUTF8") // check refused the transaction if not offered
	}
	b.WriteString("\r\n")
	for _, r := range rcpts {
		b.WriteString("RCPT TO:<" + r + ">")
		if o := rcptOptions(orcpt[r]); o != nil && c.offers("DSN") {
			b.WriteString(" ORCPT=" + c.orcptParam(o))
		}
		b.WriteString("\r\n")
	}
	b.WriteString("DATA\r\n")
	return []byte(b.String())
}

func (c *Conn) offers(ext string) bool {
	ok, _ := c.c.Extension(ext)
	return ok
}

// orcptParam is ORCPT's value (RFC 3461 §4.2): "RFC822;" and the
// address in xtext, or "UTF-8;" and the address in RFC 6533's
// utf-8-addr-unitext (SMTPUTF8 offered) or utf-8-addr-xtext.
func (c *Conn) orcptParam(o *smtp.RcptOptions) string {
	typ := string(o.OriginalRecipientType) + ";"
	if o.OriginalRecipientType == smtp.DSNAddressTypeRFC822 {
		return typ + xtext(o.OriginalRecipient)
	}
	return typ + utf8Addr(o.OriginalRecipient, c.offers("SMTPUTF8"))
}

// xtext is s in RFC 3461 §4's xtext: the printable ASCII characters
// other than '+' and '=' as they are, any other byte as '+' and two hex
// digits. rcptOptions gives it only ASCII.
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if ch := s[i]; ch >= '!' && ch <= '~' && ch != '+' && ch != '=' {
			b.WriteByte(ch)
		} else {
			fmt.Fprintf(&b, "+%02X", ch)
		}
	}
	return b.String()
}

// utf8Addr is s in RFC 6533 §3's utf-8-addr-xtext, or utf-8-addr-unitext
// if unitext (non-ASCII characters as they are): the printable ASCII
// characters other than '+', '=' and '\' as they are, any other
// character as "\x{" its code point in hex "}".
func utf8Addr(s string, unitext bool) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '!' && r <= '~' && r != '+' && r != '=' && r != '\\' || unitext && r > 0x7f {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, `\x{%X}`, r)
		}
	}
	return b.String()
}
