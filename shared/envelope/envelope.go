// Package envelope reads and writes the lines popspool puts at the very top
// of a spool file: the envelope in the pickup-folder convention of IIS SMTP
// and Exchange (one X-Sender line, one X-Receiver line per recipient) and
// popspool's own lines (X-Popspool-Target, -Failed, -Attempts,
// -Next-Attempt, -Last-Error). The message itself follows untouched.
//
// "X-Popspool-Target: NAME" names the [target.NAME] table of the config
// the message is delivered to; rewrited writes it for an account with a
// target key, and without it the message goes to [deliver]'s target. The
// name is read in lower case.
//
// An X-Receiver line may carry the recipient's original address, as
// Exchange's Replay folder writes it: "X-Receiver: <alice@contoso.local>
// ORCPT=rfc822;alice@isp.example" (RFC 3461 §4.2 address type and value;
// "ORCPT=<addr>" is read too). deliverd sends it as RCPT's ORCPT when the
// config asks for DSN.
package envelope

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Envelope is what the top lines say.
type Envelope struct {
	Sender      string // "" is the null sender <>
	HasSender   bool
	Receivers   []string
	Originals   map[string]string // receiver -> original address (ORCPT); nil if none
	Target      string            // the delivery target's name; "" for [deliver]'s
	Failed      string            // "<event> <reason>" set by rewrited
	Attempts    int
	NextAttempt time.Time
	LastError   string
}

const (
	hSender  = "x-sender"
	hRcpt    = "x-receiver"
	hTarget  = "x-popspool-target"
	hFailed  = "x-popspool-failed"
	hAttempt = "x-popspool-attempts"
	hNext    = "x-popspool-next-attempt"
	hLastErr = "x-popspool-last-error"
)

// maxLine bounds an envelope line; maxLines bounds their number.
const (
	maxLine  = 2048
	maxLines = 10000
)

// Read consumes the envelope lines at the top of r and leaves r at the
// first line of the message. Lines that are not envelope lines are not
// consumed.
func Read(r *bufio.Reader) (Envelope, error) {
	var e Envelope
	for n := 0; n < maxLines; n++ {
		key, val, size, ok := peekLine(r)
		if !ok {
			return e, nil
		}
		if err := e.set(key, val); err != nil {
			return e, err
		}
		if _, err := r.Discard(size); err != nil {
			return e, err
		}
	}
	return e, fmt.Errorf("more than %d envelope lines", maxLines)
}

// peekLine looks at the next line without consuming it and reports whether
// it is an envelope line.
func peekLine(r *bufio.Reader) (key, val string, size int, ok bool) {
	b, _ := r.Peek(maxLine)
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return "", "", 0, false
	}
	line := strings.TrimRight(string(b[:i]), "\r")
	k, v, found := strings.Cut(line, ":")
	k = strings.ToLower(k)
	switch k {
	case hSender, hRcpt, hTarget, hFailed, hAttempt, hNext, hLastErr:
	default:
		return "", "", 0, false
	}
	return k, strings.TrimSpace(v), i + 1, found
}

func (e *Envelope) set(key, val string) error {
	switch key {
	case hSender:
		e.Sender, e.HasSender = unangle(val), true
	case hRcpt:
		a, orcpt := receiver(val)
		if a != "" {
			e.Receivers = append(e.Receivers, a)
		}
		if a != "" && orcpt != "" {
			if e.Originals == nil {
				e.Originals = map[string]string{}
			}
			e.Originals[a] = orcpt
		}
	case hTarget:
		e.Target = strings.ToLower(val)
	case hFailed:
		e.Failed = val
	case hAttempt:
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return fmt.Errorf("X-Popspool-Attempts: %q is not a count", val)
		}
		e.Attempts = n
	case hNext:
		t, err := time.Parse(time.RFC3339, val)
		if err != nil {
			return fmt.Errorf("X-Popspool-Next-Attempt: %q is not an RFC 3339 time", val)
		}
		e.NextAttempt = t
	case hLastErr:
		e.LastError = val
	}
	return nil
}

// receiver splits "<addr> ORCPT=rfc822;orig" into the address and the
// original address; other parameters are ignored.
func receiver(val string) (addr, orcpt string) {
	val = strings.TrimSpace(val)
	if !strings.HasPrefix(val, "<") {
		return unangle(val), ""
	}
	end := strings.IndexByte(val, '>')
	if end < 0 {
		return unangle(val), ""
	}
	addr = val[1:end]
	for _, p := range strings.Fields(val[end+1:]) {
		k, v, _ := strings.Cut(p, "=")
		if !strings.EqualFold(k, "ORCPT") {
			continue
		}
		if typ, a, ok := strings.Cut(v, ";"); ok && (strings.EqualFold(typ, "rfc822") || strings.EqualFold(typ, "utf-8")) {
			v = a
		}
		orcpt = unangle(v)
	}
	return addr, orcpt
}

func unangle(s string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
}

// Write writes the envelope lines, CRLF-terminated, in a fixed order.
func (e Envelope) Write(w io.Writer) error {
	var b strings.Builder
	if e.HasSender {
		fmt.Fprintf(&b, "X-Sender: <%s>\r\n", clean(e.Sender))
	}
	for _, r := range e.Receivers {
		if o := e.Originals[r]; o != "" && !strings.ContainsAny(o, " \t") {
			fmt.Fprintf(&b, "X-Receiver: <%s> ORCPT=rfc822;%s\r\n", clean(r), clean(o))
			continue
		}
		fmt.Fprintf(&b, "X-Receiver: <%s>\r\n", clean(r))
	}
	if e.Target != "" {
		fmt.Fprintf(&b, "X-Popspool-Target: %s\r\n", clean(e.Target))
	}
	if e.Failed != "" {
		fmt.Fprintf(&b, "X-Popspool-Failed: %s\r\n", clean(e.Failed))
	}
	if e.Attempts > 0 {
		fmt.Fprintf(&b, "X-Popspool-Attempts: %d\r\n", e.Attempts)
	}
	if !e.NextAttempt.IsZero() {
		fmt.Fprintf(&b, "X-Popspool-Next-Attempt: %s\r\n", e.NextAttempt.UTC().Format(time.RFC3339))
	}
	if e.LastError != "" {
		fmt.Fprintf(&b, "X-Popspool-Last-Error: %s\r\n", clean(e.LastError))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// clean makes s safe as one header line: no line breaks or control
// characters, at most 500 bytes.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}
