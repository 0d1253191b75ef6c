package filter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// Command is an external filter such as `spamc -c` or `rspamc`: it gets
// the message on standard input. Exit status 0 passes the message; 1 means
// "flagged", which tags the message with a header (action "tag") or moves
// it to failed/ (action "fail"); anything else, a time-out or a command
// that cannot start is the filter's own failure, and the message passes
// unfiltered with a warning, so a broken filter never stops the mail.
type Command struct {
	Argv      []string
	Timeout   time.Duration
	Action    string // "tag" or "fail"
	TagHeader string
}

// Verdict is the filter's decision.
type Verdict struct {
	Tag    string // non-empty: add "<TagHeader>: <Tag>"
	Reject string // non-empty: move to failed/ with this reason
	Broken error  // the filter failed; the message passes
}

// Run feeds msg to the command and interprets its exit status.
func (c *Command) Run(ctx context.Context, msg io.Reader) Verdict {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Stdin = msg
	var out, errOut capped
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return Verdict{}
	case ctx.Err() != nil:
		return Verdict{Broken: fmt.Errorf("filter %s timed out after %v", c.Argv[0], c.Timeout)}
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		say := firstLine(out.String())
		if say == "" {
			say = "flagged by " + c.Argv[0]
		}
		if c.Action == "fail" {
			return Verdict{Reject: "filter " + c.Argv[0] + ": " + say}
		}
		return Verdict{Tag: say}
	}
	return Verdict{Broken: fmt.Errorf("filter %s: %v: %s", c.Argv[0], err, firstLine(errOut.String()))}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
}

// capped keeps the first 4 KiB written to it and discards the rest, so a
// chatty filter cannot fill memory.
type capped struct{ bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := 4096 - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
