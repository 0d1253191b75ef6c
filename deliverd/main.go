// Command deliverd delivers routed messages: it takes each file from
// pickup/, hands it to the local mail server over SMTP or LMTP, or writes
// it into a Maildir, and records every outcome in its ledger so that no
// message is delivered twice.
//
//	deliverd [-config FILE] [-once]
//	deliverd check [-config FILE]
//
// "deliverd check" tries the delivery target step by step, as "fetchd
// check" does the POP3 side, and delivers nothing.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"example.org/popspool/deliverd/check"
	"example.org/popspool/deliverd/ledger"
	"example.org/popspool/deliverd/queue"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/service"
	"example.org/popspool/shared/spool"
)

func main() {
	os.Exit(service.Run("deliverd", os.Args[1:], run, service.Command{
		Name: "check", Help: "try the delivery target step by step (resolve, connect, EHLO, STARTTLS, AUTH, MAIL and RCPT for the postmaster, no DATA; for a Maildir, that it is writable; for a pickup folder, that it and its staging folder are writable on one volume)",
		Run: func(ctx context.Context, env *service.Env) int {
			if len(env.Args) > 0 {
				fmt.Fprintln(os.Stderr, "usage: deliverd check [-config FILE]")
				return 2
			}
			return check.Run(ctx, env.Config, os.Stdout, env.Log)
		},
	}))
}

func run(ctx context.Context, env *service.Env) error {
	s, err := spool.Open(env.Config.Spool, "deliverd", env.Log)
	if err != nil {
		return err
	}
	defer s.Close()
	l, err := ledger.OpenFS(filepath.Join(s.Dir(spool.State), "deliverd.ledger"), s.FS())
	if err != nil {
		return err
	}
	defer l.Close()
	l.OnFull = func(err error) {
		event.Emit(&env.Log, event.DiskFull).Err(err).Str("file", "deliverd.ledger").Msg("no room for the delivery ledger's record; deliveries wait for space")
	}
	l.OnCompact = func(before, after int, err error) {
		if err != nil {
			event.Emit(&env.Log, event.LedgerCompactFailed).Err(err).Int("records", before).Msg("delivery ledger not compacted; tried again when it has doubled")
			return
		}
		event.Emit(&env.Log, event.LedgerCompacted).Int("before", before).Int("after", after).Msg("delivery ledger compacted")
	}
	event.Emit(&env.Log, event.LedgerRecovered).Int("unknown_outcomes", l.Windows()).Msg("delivery ledger read")
	if l.Torn > 0 {
		event.Emit(&env.Log, event.JournalTorn).Int64("bytes", l.Torn).Str("journal", "deliverd.ledger").Msg("a crash left a torn record; cut away")
	}
	l.Damage.Report(&env.Log)
	lanes, err := newLanes(s, env.Config, env.Log, l)
	if err != nil {
		return err
	}
	defer closeTargets(lanes)
	defer lanes.Close()
	if err := lanes.Recover(); err != nil {
		return err
	}
	env.Ready() // systemd's READY=1 and the status file: recovery is done
	if err := lanes.Run(ctx, env.Once); err != nil {
		return err
	}
	if n := lanes.Unsent(); env.Once && n > 0 {
		return fmt.Errorf("%d message(s) deferred or moved to badmail/", n)
	}
	return nil
}

// closeTargets closes each lane's target (its connections).
func closeTargets(lanes *queue.Lanes) {
	for _, name := range lanes.Names() {
		lanes.Lane(name).Target.Close()
	}
}
