package pop3

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

// TestTraceLimits: a message body is never traced, only a note with its
// size; of a long listing the first TraceListingLines lines are traced and
// a note counts the rest.
func TestTraceLimits(t *testing.T) {
	var uidl strings.Builder
	uidl.WriteString("+OK\r\n")
	const n = TraceListingLines + 25
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&uidl, "%d uid-%d\r\n", i, i)
	}
	uidl.WriteString(".\r\n")
	body := "Subject: secret plans\r\n\r\nbody line\r\n"
	fs := serve(t, greet,
		step{c: "UIDL", s: uidl.String()},
		step{c: "RETR 1", s: "+OK\r\n" + body + ".\r\n"},
		step{c: "QUIT", s: "+OK bye\r\n"},
	)
	var tr tracer
	o := clearOpts()
	o.Trace = tr.trace
	c := dial(t, fs, o)
	if _, err := c.UIDL(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Retr(1, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	s := tr.String()
	for _, want := range []string{
		"C UIDL", "S 1 uid-1", fmt.Sprintf("S %d uid-%d", TraceListingLines, TraceListingLines),
		"S [UIDL: 25 more listing lines, not traced]",
		"C RETR 1", fmt.Sprintf("S [RETR 1 body: %d octets, not traced]", len(body)), "C QUIT", "S +OK bye",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("trace lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, fmt.Sprintf(" uid-%d", TraceListingLines+1)) || strings.Contains(s, "secret plans") {
		t.Errorf("trace has lines past the listing cap or the message body:\n%s", s)
	}
}
