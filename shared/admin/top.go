package admin

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"example.org/popspool/shared/envelope"
)

// topLimit bounds what is read of a file: its envelope lines and the
// start of the message header, never the body. A header longer than this
// is read no further (a note says so).
const topLimit = 64 << 10

// top is what the first lines of a spool file say.
type top struct {
	env     envelope.Envelope
	envRaw  []string          // the envelope lines as written
	fields  []field           // header fields of the message, in order, unfolded
	first   map[string]string // lower-case name -> first value, of the fields kept
	notes   []string          // what is wrong with the lines (a file edited by hand)
	partial bool              // topLimit reached before the end of the header
}

type field struct{ name, value string }

// wanted are the header fields kept for queue and show; show's routing
// section also looks at the envelope headers (config.Routing).
var wanted = map[string]bool{
	"x-popspool-account": true, "return-path": true, "from": true, "sender": true, "to": true, "cc": true,
	"subject": true, "date": true, "message-id": true, "received": true, "delivered-to": true,
	"x-original-to": true, "envelope-to": true, "x-envelope-to": true, "x-popspool-queue-id": true,
	"x-popspool-filter": true, "x-popspool-oversize": true,
}

// envKeys are the envelope line names; seen below the top they are a
// mistake (deliverd reads only the top lines).
var envKeys = map[string]bool{
	"x-sender": true, "x-receiver": true, "x-popspool-failed": true, "x-popspool-attempts": true,
	"x-popspool-next-attempt": true, "x-popspool-last-error": true, "x-popspool-target": true,
}

// readTop reads the envelope lines and the header fields of r, up to
// topLimit bytes. keepAll keeps every header field (for show), not only
// those in wanted. Broken lines become notes; only a read error fails.
func readTop(r io.Reader, keepAll bool) (*top, error) {
	t := &top{first: map[string]string{}}
	lr := &io.LimitedReader{R: r, N: topLimit}
	br := bufio.NewReaderSize(lr, 4096)
	if err := t.readEnvelope(br); err != nil {
		return t, err
	}
	ended, err := t.readHeader(br, keepAll)
	if !ended && lr.N == 0 {
		t.partial = true
		t.notes = append(t.notes, fmt.Sprintf("header longer than %d KiB: read no further", topLimit>>10))
	}
	return t, err
}

// readEnvelope reads the envelope lines at the top, one at a time, each
// with the daemons' own parser (shared/envelope). A line it refuses (an
// attempt count that is no number, a time that is not RFC 3339) is noted
// and passed over, and reading goes on.
func (t *top) readEnvelope(br *bufio.Reader) error {
	for n := 0; n < maxEnvLines; n++ {
		b, _ := br.Peek(2048) // envelope.maxLine: a longer line is not an envelope line
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil
		}
		line := string(b[:i+1])
		key, _, found := strings.Cut(line, ":")
		if !found || !envKeys[strings.ToLower(key)] {
			return nil
		}
		if _, err := br.Discard(i + 1); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		t.envRaw = append(t.envRaw, strings.TrimRight(line, "\r\n"))
		e, err := envelope.Read(bufio.NewReaderSize(strings.NewReader(line), len(line)+16))
		if err != nil {
			t.notes = append(t.notes, fmt.Sprintf("broken envelope line %d (%v): the daemons refuse the file so (deliverd into badmail/, rewrited into failed/)", n+1, err))
			continue
		}
		t.merge(e)
	}
	t.notes = append(t.notes, fmt.Sprintf("more than %d envelope lines; the rest not read", maxEnvLines))
	return nil
}

// maxEnvLines bounds the envelope lines read (envelope.Read's own bound).
const maxEnvLines = 10000

// merge adds what a run of envelope lines said to t.env, as the daemons
// would have read it had the broken line not been there.
func (t *top) merge(e envelope.Envelope) {
	if e.HasSender {
		t.env.Sender, t.env.HasSender = e.Sender, true
	}
	t.env.Receivers = append(t.env.Receivers, e.Receivers...)
	for k, v := range e.Originals {
		if t.env.Originals == nil {
			t.env.Originals = map[string]string{}
		}
		t.env.Originals[k] = v
	}
	if e.Failed != "" {
		t.env.Failed = e.Failed
	}
	if e.Attempts > 0 {
		t.env.Attempts = e.Attempts
	}
	if !e.NextAttempt.IsZero() {
		t.env.NextAttempt = e.NextAttempt
	}
	if e.LastError != "" {
		t.env.LastError = e.LastError
	}
	if e.Target != "" {
		t.env.Target = e.Target
	}
}

// readHeader reads header fields up to the blank line that ends them;
// ended is false when the input ended first.
func (t *top) readHeader(br *bufio.Reader, keepAll bool) (ended bool, err error) {
	var cur *field
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		if err != nil && err != io.EOF {
			return false, fmt.Errorf("read: %w", err)
		}
		complete := strings.HasSuffix(line, "\n")
		line = strings.TrimRight(line, "\r\n")
		switch {
		case !complete:
			t.keep(cur, keepAll) // a field cut by the end of what was read
			return false, nil
		case line == "":
			t.keep(cur, keepAll)
			return true, nil
		case line[0] == ' ' || line[0] == '\t':
			if cur != nil {
				cur.value += " " + strings.TrimSpace(line)
			}
			continue
		}
		t.keep(cur, keepAll)
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			t.notes = append(t.notes, fmt.Sprintf("header line %d is not a header field: %.60q", n, line))
			return true, nil
		}
		lower := strings.ToLower(name)
		if envKeys[lower] {
			t.notes = append(t.notes, fmt.Sprintf("%s line below the top (header line %d): the daemons do not read it there", name, n))
		}
		cur = &field{name, strings.TrimSpace(value)}
	}
}

func (t *top) keep(f *field, keepAll bool) {
	if f == nil {
		return
	}
	lower := strings.ToLower(f.name)
	if !keepAll && !wanted[lower] {
		return
	}
	t.fields = append(t.fields, *f)
	if _, ok := t.first[lower]; !ok {
		t.first[lower] = f.value
	}
}

// values returns every value of a header field, topmost first.
func (t *top) values(name string) []string {
	var out []string
	for _, f := range t.fields {
		if strings.EqualFold(f.name, name) {
			out = append(out, f.value)
		}
	}
	return out
}

// sender is the envelope sender, or, for a file not routed yet, the
// address the header suggests, and where it came from.
func (t *top) sender() (addr, source string) {
	if t.env.HasSender {
		return t.env.Sender, "X-Sender"
	}
	for _, k := range []string{"return-path", "sender", "from"} {
		if v, ok := t.first[k]; ok {
			return address(v), k
		}
	}
	return "", ""
}

// address takes the address out of a header value: what is inside the
// last <...>, else the value itself. Good enough to show and to filter;
// routing uses a real parser.
func address(v string) string {
	if i := strings.LastIndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			return strings.TrimSpace(v[i+1 : i+j])
		}
	}
	return strings.TrimSpace(v)
}
