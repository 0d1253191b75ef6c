// Package dsn writes delivery status notifications (RFC 3464): the bounce
// deliverd sends when a message cannot be delivered. A DSN is a
// multipart/report (RFC 6522) with report-type=delivery-status, made of a
// text for people, a message/delivery-status part with one per-message and
// one per-recipient block of fields, and the original's header as
// text/rfc822-headers (never its body: fetched mail is private).
package dsn

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

// Recipient is one per-recipient block (RFC 3464 §2.3).
type Recipient struct {
	Final    string // Final-Recipient: the address deliverd sent to
	Original string // Original-Recipient (RFC 3461 ORCPT), "" if unknown
	// Status is the RFC 3463 code: the server's enhanced code, else one
	// derived from its reply code; "4.4.7" for an expired message.
	Status string
	// Diagnostic is the server's reply ("550 5.1.1 <x>: unknown"), or the
	// local error when there was no reply.
	Diagnostic string
	SMTP       bool // Diagnostic is an SMTP reply ("smtp;"), else "x-popspool;"
	LastTry    time.Time
}

// Report is everything a DSN says.
type Report struct {
	ReportingMTA string    // the name deliverd says EHLO with
	From         string    // the DSN's From: the postmaster address
	To           []string  // the DSN's recipients, for its To: header
	MessageID    string    // the spool id of the failed message
	Arrival      time.Time // Arrival-Date: when fetchd took the message
	Expired      bool      // delay-expired: given up after retrying
	// Deferred: the message is still being retried for other recipients
	// (it is in deferred/, not badmail/).
	Deferred   bool
	Recipients []Recipient
}

// Write writes the DSN, a complete message with CRLF line ends, to w.
// header is the original message's header section (up to and without the
// blank line), copied into the text/rfc822-headers part.
func Write(w io.Writer, r Report, header []byte, date time.Time) error {
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{{Name: "Mail Delivery System", Address: r.From}})
	var to []*mail.Address
	for _, a := range r.To {
		to = append(to, &mail.Address{Address: a})
	}
	h.SetAddressList("To", to)
	h.SetSubject(subject(r))
	h.SetDate(date)
	h.SetMessageID(fmt.Sprintf("%s.dsn@%s", r.MessageID, hostPart(r.ReportingMTA)))
	h.Set("Auto-Submitted", "auto-replied") // RFC 3834 §5: no auto-replies to this
	h.SetContentType("multipart/report", map[string]string{"report-type": "delivery-status"})
	mw, err := message.CreateWriter(w, h.Header)
	if err != nil {
		return err
	}
	if err := part(mw, "text/plain", map[string]string{"charset": "utf-8"}, []byte(humanText(r))); err != nil {
		return err
	}
	if err := part(mw, "message/delivery-status", nil, []byte(statusFields(r))); err != nil {
		return err
	}
	if err := part(mw, "text/rfc822-headers", nil, crlf(header)); err != nil {
		return err
	}
	return mw.Close()
}

func part(mw *message.Writer, ctype string, params map[string]string, body []byte) error {
	var h message.Header
	h.SetContentType(ctype, params)
	if !ascii(body) {
		h.Set("Content-Transfer-Encoding", "8bit")
	}
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := pw.Write(body); err != nil {
		return err
	}
	return pw.Close()
}

func subject(r Report) string {
	if r.Expired {
		return "Undelivered Mail Returned to Sender (delivery time expired)"
	}
	return "Undelivered Mail Returned to Sender"
}

func humanText(r Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "This is the mail delivery system at %s (popspool deliverd).\r\n\r\n", r.ReportingMTA)
	if r.Expired {
		b.WriteString("A message fetched from your provider could not be delivered to the local\r\n" +
			"mail server before its delivery time expired. It was given up for:\r\n\r\n")
	} else {
		b.WriteString("A message fetched from your provider was refused by the local mail server\r\n" +
			"for these recipients:\r\n\r\n")
	}
	for _, rc := range r.Recipients {
		fmt.Fprintf(&b, "<%s>: %s\r\n", rc.Final, oneLine(rc.Diagnostic))
	}
	if r.Deferred {
		fmt.Fprintf(&b, "\r\nThe message is still being retried for its other recipients (spool folder\r\n"+
			"deferred/, file %s.eml). Its header follows.\r\n", r.MessageID)
	} else {
		fmt.Fprintf(&b, "\r\nThe message is kept in the spool's badmail/ folder as %s.eml;\r\n"+
			"move it back into pickup/ to try again. Its header follows.\r\n", r.MessageID)
	}
	return b.String()
}

// statusFields is the message/delivery-status body (RFC 3464 §2.1).
func statusFields(r Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Reporting-MTA: dns; %s\r\n", oneLine(r.ReportingMTA))
	fmt.Fprintf(&b, "X-Popspool-Queue-ID: %s\r\n", r.MessageID)
	if !r.Arrival.IsZero() {
		fmt.Fprintf(&b, "Arrival-Date: %s\r\n", r.Arrival.Format(time.RFC1123Z))
	}
	for _, rc := range r.Recipients {
		b.WriteString("\r\n")
		if rc.Original != "" {
			fmt.Fprintf(&b, "Original-Recipient: rfc822; %s\r\n", oneLine(rc.Original))
		}
		fmt.Fprintf(&b, "Final-Recipient: rfc822; %s\r\n", oneLine(rc.Final))
		b.WriteString("Action: failed\r\n")
		fmt.Fprintf(&b, "Status: %s\r\n", rc.Status)
		if rc.Diagnostic != "" {
			kind := "x-popspool"
			if rc.SMTP {
				kind = "smtp"
			}
			fmt.Fprintf(&b, "Diagnostic-Code: %s; %s\r\n", kind, oneLine(rc.Diagnostic))
		}
		if !rc.LastTry.IsZero() {
			fmt.Fprintf(&b, "Last-Attempt-Date: %s\r\n", rc.LastTry.Format(time.RFC1123Z))
		}
	}
	return b.String()
}

// Status returns the RFC 3463 status for a reply: its enhanced code if it
// had one whose class matches, else the class with "0.0" (RFC 3463 §3.1:
// X.0.0 "other undefined status").
func Status(code int, enhanced string) string {
	class := code / 100
	if enhanced != "" && len(enhanced) > 0 && int(enhanced[0]-'0') == class {
		return enhanced
	}
	switch class {
	case 2, 4, 5:
		return fmt.Sprintf("%d.0.0", class)
	}
	return "4.0.0" // no reply at all: a temporary, unknown failure
}

// IsReport reports whether the message whose header is given is itself a
// report (multipart/report, as DSNs and MDNs are); no bounce is ever sent
// for one (RFC 3464 §4; RFC 5321 §4.5.5 for the null sender).
func IsReport(header []byte) bool {
	h, err := readHeader(header)
	if err != nil {
		return false
	}
	t, _, err := h.ContentType()
	return err == nil && strings.EqualFold(t, "multipart/report")
}

func readHeader(b []byte) (message.Header, error) {
	e, err := message.Read(bufio.NewReader(io.MultiReader(bytes.NewReader(crlf(b)), strings.NewReader("\r\n"))))
	if e == nil {
		return message.Header{}, err
	}
	return e.Header, nil
}

// crlf ends every line in CRLF and the header with a line end.
func crlf(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
	if len(b) > 0 && !bytes.HasSuffix(b, []byte("\r\n")) {
		b = append(b, '\r', '\n')
	}
	return b
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)), " ")
}

func hostPart(s string) string {
	s = strings.Trim(s, "[]")
	if s == "" {
		return "popspool.invalid"
	}
	return strings.NewReplacer(":", ".", " ", "").Replace(s)
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
