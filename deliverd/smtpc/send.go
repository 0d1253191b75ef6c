package smtpc

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-smtp"

	"example.org/popspool/shared/liveness"
)

// Send runs one mail transaction: MAIL, RCPT for each distinct recipient,
// DATA, the body (streamed, dot-stuffed, each write bounded by
// Timeouts.DataBlock) and the final dot.
//
// Server verdicts go to Result, one Status per rcpts entry: a refused MAIL
// or DATA applies to every recipient it concerns; with SMTP the reply to
// the final dot is shared by all accepted recipients, with LMTP each gets
// its own (RFC 2033 §4.2). A message larger than the server's SIZE is
// refused here, before MAIL, with 552 5.3.4 (RFC 1870).
//
// err is non-nil only for failures of the connection (I/O, timeout,
// cancelled ctx, garbled reply); it is then an *Error whose AfterDot tells
// whether the final dot had gone out, and Result keeps the verdicts that
// had arrived (Code 0 = unknown). Cancelling ctx closes the connection.
//
// size is the body's length in bytes for SIZE=, 0 if unknown. BODY=8BITMIME
// is sent when offered; SMTPUTF8 when an address is not ASCII.
func (c *Conn) Send(ctx context.Context, from string, rcpts []string, body io.Reader, size int64) (Result, error) {
	return c.SendWith(ctx, from, rcpts, body, size, SendOptions{})
}

// SendOptions are the optional parts of a transaction.
type SendOptions struct {
	// ORCPT maps a recipient to its original address, sent as RCPT's
	// ORCPT=rfc822;<addr> (RFC 3461 §4.2) when the server offers DSN;
	// "utf-8;" (RFC 6533) for a non-ASCII address.
	ORCPT map[string]string
}

// SendWith is Send with options.
func (c *Conn) SendWith(ctx context.Context, from string, rcpts []string, body io.Reader, size int64, o SendOptions) (Result, error) {
	t := newTx(rcpts)
	t.orcpt = o.ORCPT
	if err := ctx.Err(); err != nil {
		return t.res, &Error{Op: "MAIL", Err: context.Cause(ctx)}
	}
	if c.Broken() {
		return t.res, &Error{Op: "MAIL", Err: ErrBroken}
	}
	stop := context.AfterFunc(ctx, c.w.kill)
	defer stop()
	c.w.beat = liveness.From(ctx) // a reused connection serves the loop that sends now
	err := c.send(t, from, body, size)
	if err != nil {
		err = withCause(ctx, err)
	}
	return t.res, err
}

// send is the transaction, step by step; each step returns (done, err).
func (c *Conn) send(t *tx, from string, body io.Reader, size int64) error {
	if err := c.sayHelloAgain(); err != nil {
		return err
	}
	opts, ok := c.check(t, from, size)
	if !ok {
		return nil
	}
	if !c.o.NoPipelining && c.offers("PIPELINING") {
		return c.pipelined(t, from, opts, body)
	}
	if done, err := c.mail(t, from, opts); done {
		return err
	}
	if done, err := c.rcpt(t); done {
		return err
	}
	return c.data(t, body)
}

// sayHelloAgain sends the EHLO that go-smtp's Reset forgets; doing it here
// keeps an EHLO failure from passing for a MAIL reply.
func (c *Conn) sayHelloAgain() error {
	if !c.rehello {
		return nil
	}
	c.c.CommandTimeout = c.o.Command
	if err := c.c.Hello(c.helo); err != nil {
		return c.fail(replyError("EHLO", err))
	}
	c.rehello = false
	return nil
}

// check refuses locally what the server must not be sent, and builds the
// MAIL options. ok is false when no recipient is left.
func (c *Conn) check(t *tx, from string, size int64) (*smtp.MailOptions, bool) {
	if strings.ContainsAny(from, "\r\n") {
		t.setOpen(newStatus(553, "5.1.7", "smtpc: sender address contains a line break"))
	}
	for _, r := range t.open() {
		if strings.ContainsAny(r, "\r\n") {
			t.set(r, newStatus(553, "5.1.3", "smtpc: recipient address contains a line break"))
		}
	}
	if max, ok := c.c.MaxMessageSize(); ok && max > 0 && size > int64(max) {
		t.setOpen(newStatus(552, "5.3.4", "smtpc: message size exceeds the server's SIZE limit"))
	}
	opts := &smtp.MailOptions{UTF8: !ascii(from) || !allASCII(t.open())}
	if ok, _ := c.c.Extension("SMTPUTF8"); opts.UTF8 && !ok {
		// RFC 6531: no SMTPUTF8, no non-ASCII address; X.6.7 says so.
		t.setOpen(newStatus(553, "5.6.7", "smtpc: non-ASCII address but the server has no SMTPUTF8"))
	}
	if size > 0 {
		opts.Size = size // go-smtp sends SIZE= only when offered (RFC 1870)
	}
	return opts, len(t.open()) > 0
}

func (c *Conn) mail(t *tx, from string, opts *smtp.MailOptions) (bool, error) {
	c.c.CommandTimeout = c.o.Mail
	err := c.c.Mail(from, opts)
	if err == nil {
		return false, nil
	}
	if s, ok := replyStatus(err); ok {
		t.setOpen(s)
		c.closing(s)
		return true, nil
	}
	return true, c.fail(&Error{Op: "MAIL", Err: err})
}

// rcpt sends RCPT for each open recipient; done when none was accepted.
func (c *Conn) rcpt(t *tx) (bool, error) {
	for _, r := range t.open() {
		c.c.CommandTimeout = c.o.Rcpt
		err := c.c.Rcpt(r, rcptOptions(t.orcpt[r]))
		if err == nil {
			t.accepted = append(t.accepted, r)
			continue
		}
		s, ok := replyStatus(err)
		if !ok {
			return true, c.fail(&Error{Op: "RCPT", Err: err})
		}
		t.set(r, s)
		if c.closing(s) {
			t.setOpen(s)
			return true, nil
		}
	}
	if len(t.accepted) == 0 {
		c.abort()
		return true, nil
	}
	return false, nil
}

// data sends DATA, the body and the final dot, and reads the verdict.
func (c *Conn) data(t *tx, body io.Reader) error {
	c.c.CommandTimeout = c.o.DataInit
	dc, err := c.c.Data()
	if err != nil {
		if s, ok := replyStatus(err); ok {
			t.setOpen(s)
			if !c.closing(s) {
				c.abort()
			}
			return nil
		}
		return c.fail(&Error{Op: "DATA", Err: err})
	}
	c.w.beginData()
	defer c.w.endData()
	if err := c.body(dc, body); err != nil {
		return err
	}
	c.c.SubmissionTimeout = c.o.FinalDot
	if !c.lmtp {
		return c.finishSMTP(t, dc)
	}
	return c.finishLMTP(t, dc)
}

// finishSMTP: the final-dot reply is every accepted recipient's verdict.
func (c *Conn) finishSMTP(t *tx, dc *smtp.DataCommand) error {
	resp, err := dc.CloseWithResponse()
	if err == nil {
		t.setOpen(replyToStatus(250, resp.StatusText))
		return nil
	}
	if s, ok := replyStatus(err); ok {
		t.setOpen(s)
		c.closing(s)
		return nil
	}
	return c.fail(&Error{Op: "dot", AfterDot: c.w.dotSent(), Err: err})
}

// finishLMTP: one reply per accepted recipient, in RCPT order.
func (c *Conn) finishLMTP(t *tx, dc *smtp.DataCommand) error {
	resp, err := dc.CloseWithLMTPResponse()
	for rcpt, r := range resp {
		t.set(rcpt, replyToStatus(250, r.StatusText))
	}
	var le smtp.LMTPDataError
	if errors.As(err, &le) {
		for rcpt, se := range le {
			s := smtpErrorStatus(se)
			t.set(rcpt, s)
			c.closing(s)
		}
	}
	if _, only := err.(smtp.LMTPDataError); err == nil || only {
		return nil
	}
	return c.fail(&Error{Op: "dot", AfterDot: c.w.dotSent(), Err: err})
}

// Reset sends RSET (RFC 5321 §4.1.1.5) so the connection can carry the
// next message. go-smtp then forgets the EHLO; Send says it again.
func (c *Conn) Reset() error {
	if c.Broken() {
		return &Error{Op: "RSET", Err: ErrBroken}
	}
	c.c.CommandTimeout = c.o.Command
	if err := c.c.Reset(); err != nil {
		return c.fail(replyError("RSET", err))
	}
	c.rehello = true
	return nil
}

// Close sends QUIT (RFC 5321 §4.1.1.10) and closes the connection. On a
// broken connection it only closes.
func (c *Conn) Close() error {
	if c.w.broken.Swap(true) {
		return nil
	}
	defer c.w.kill()
	c.c.CommandTimeout = c.o.Command
	if err := c.c.Quit(); err != nil {
		return replyError("QUIT", err)
	}
	return nil
}

// abort ends a transaction that will not reach DATA's end. The verdicts
// are in; if RSET fails the connection is just not reused.
func (c *Conn) abort() {
	c.c.CommandTimeout = c.o.Command
	if err := c.c.Reset(); err != nil {
		c.w.kill()
		return
	}
	c.rehello = true
}

// closing handles 421: the server is closing the channel (RFC 5321
// §3.8), so the connection is done for.
func (c *Conn) closing(s Status) bool {
	if s.Code != 421 {
		return false
	}
	c.w.kill()
	return true
}

// fail closes the connection after a connection-level error.
func (c *Conn) fail(e *Error) *Error {
	c.w.kill()
	return e
}

// dataBlock is how much of the stuffed body goes to the wire per write.
const dataBlock = 64 << 10

// body sends the message dot-stuffed straight to the wire (stream),
// and its last line break through dc, whose Close then writes the final
// dot (stuffer.ending): on the wire exactly what writing it all through
// dc would send, without go-smtp's byte-at-a-time DotWriter and its 4 KiB
// writes.
func (c *Conn) body(dc *smtp.DataCommand, body io.Reader) error {
	st, err := c.stream(body)
	defer func() { c.out = st.out[:0] }()
	if err != nil {
		return err
	}
	hold, feed := st.ending()
	if rest := st.out[:len(st.out)-hold]; len(rest) > 0 {
		if _, err := c.w.Write(rest); err != nil {
			return c.fail(&Error{Op: "DATA", Err: err})
		}
	}
	if _, err := io.WriteString(dc, feed); err != nil {
		return c.fail(&Error{Op: "DATA", Err: err})
	}
	return nil
}

// stream reads the body and writes it dot-stuffed to the wire, dataBlock
// bytes a write. The stuffer it returns holds the rest, at least the last
// two bytes, which its ending may change.
func (c *Conn) stream(body io.Reader) (stuffer, error) {
	if c.in == nil {
		c.in, c.out = make([]byte, dataBlock), make([]byte, 0, 2*dataBlock+5)
	}
	st, buf := stuffer{out: c.out[:0]}, c.in
	for {
		n, err := body.Read(buf)
		st.stuff(buf[:n])
		if len(st.out) >= dataBlock {
			keep := 2 // the ending may hold back the last two bytes
			if _, werr := c.w.Write(st.out[:len(st.out)-keep]); werr != nil {
				return st, c.fail(&Error{Op: "DATA", Err: werr})
			}
			st.out = append(st.out[:0], st.out[len(st.out)-keep:]...)
		}
		if err == io.EOF {
			return st, nil
		}
		if err != nil {
			// SMTP cannot abort DATA: hanging up is the only way not to
			// send a truncated message with a valid final dot.
			return st, c.fail(&Error{Op: "body", Err: err})
		}
	}
}

// rcptOptions carries ORCPT; go-smtp sends it only if DSN is offered.
func rcptOptions(orcpt string) *smtp.RcptOptions {
	if orcpt == "" || strings.ContainsFunc(orcpt, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return nil
	}
	typ := smtp.DSNAddressTypeRFC822
	if !ascii(orcpt) {
		typ = smtp.DSNAddressTypeUTF8
	}
	return &smtp.RcptOptions{OriginalRecipientType: typ, OriginalRecipient: orcpt}
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func allASCII(l []string) bool {
	for _, s := range l {
		if !ascii(s) {
			return false
		}
	}
	return true
}
