// Package check is `deliverd check`: the troubleshooting an operator
// would do by hand on the delivery side (KB 885685, "Troubleshoot the
// SMTP delivery process"), as `fetchd check` does for POP3. For an SMTP or
// LMTP target it resolves the name, connects, reads the greeting, says
// EHLO (LHLO), runs STARTTLS as configured with the certificate verified,
// authenticates if configured, and asks MAIL FROM:<> and RCPT TO the
// postmaster, then RSET and QUIT: never DATA, so nothing is delivered. For
// a maildir:// target it checks that the Maildir root is a directory
// deliverd can write into; for a pickup:// target, that the pickup folder
// is writable and its staging folder can be made on the same volume. It prints one line per step and logs an event
// (4030–4039) for the step that fails.
package check

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
)

// Timeouts of the check's steps: an operator is waiting.
var (
	connectTimeout = 10 * time.Second
	commandTimeout = 30 * time.Second
)

// Run checks each of cfg's delivery targets ([deliver]'s, then each
// [target.NAME]), writes one line per step to w, and logs on log an event
// for a failing step. It returns the exit code: 0 when every step of
// every target passed, 1 when one failed.
func Run(ctx context.Context, cfg *config.Config, w io.Writer, log zerolog.Logger) int {
	code := 0
	names := cfg.TargetNames()
	for i, name := range names {
		d, _ := cfg.DeliverFor(name)
		if len(names) > 1 {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "target %s\n", name)
		}
		if !checkOne(ctx, cfg, d, w, log.With().Str("target_name", name).Logger()) {
			code = 1
		}
	}
	return code
}

// checkOne checks the target of d, a [deliver] table or a target's
// resolved one.
func checkOne(ctx context.Context, cfg *config.Config, d *config.Deliver, w io.Writer, log zerolog.Logger) bool {
	ck := &checker{out: w, log: log, target: d.Target}
	if pattern := d.MaildirPattern(); pattern != "" {
		fmt.Fprintf(w, "deliver target %s\n", d.Target)
		return ck.maildir(cfg, d, pattern)
	}
	if dir := d.PickupDir(); dir != "" {
		fmt.Fprintf(w, "deliver target %s\n", d.Target)
		return ck.pickupFolder(dir)
	}
	return ck.smtp(ctx, d)
}

type checker struct {
	out    io.Writer
	log    zerolog.Logger
	target string
}

func (ck *checker) ok(step, format string, args ...any) {
	fmt.Fprintf(ck.out, "  %-10s ok %s\n", step+":", fmt.Sprintf(format, args...))
}

// failed prints the failing step with what to do, logs its event and
// returns false.
func (ck *checker) failed(step string, ev event.ID, what, todo string) bool {
	fmt.Fprintf(ck.out, "  %-10s FAILED: %s — %s (event %d)\n", step+":", what, todo, ev)
	event.Emit(&ck.log, ev).Str("target", ck.target).Str("step", step).Str("error", what).Msg(todo)
	return false
}
