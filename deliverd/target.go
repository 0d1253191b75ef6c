package main

import (
	"fmt"
	"net/url"

	"github.com/rs/zerolog"

	"example.org/popspool/deliverd/ledger"
	"example.org/popspool/deliverd/pickup"
	"example.org/popspool/deliverd/queue"
	"example.org/popspool/deliverd/smtpc"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// newLanes makes one queue per configured target ([deliver]'s and each
// [target.NAME]), each with the config's [deliver] table replaced by the
// target's resolved one, so that its connections, retry and expire are
// the target's own.
func newLanes(s *spool.Spool, cfg *config.Config, log zerolog.Logger, l *ledger.Ledger) (*queue.Lanes, error) {
	byName := map[string]*queue.Queue{}
	closeAll := func() {
		for _, q := range byName {
			q.Target.Close()
		}
	}
	for _, name := range cfg.TargetNames() {
		d, _ := cfg.DeliverFor(name)
		lcfg := *cfg
		lcfg.Deliver = *d
		qlog := log
		if len(cfg.Targets) > 0 {
			qlog = log.With().Str("target_name", name).Logger()
		}
		t, err := newTarget(&lcfg, name, qlog, l)
		if err != nil {
			closeAll()
			return nil, err
		}
		sweep(t, qlog)
		byName[name] = &queue.Queue{S: s, Cfg: &lcfg, Log: qlog, Ledger: l, Target: t}
	}
	return queue.NewLanes(byName)
}

// sweep removes what a crash left of deliverd's own copies in a Maildir
// or pickup target; deliverd calls it at start, holding the spool lock.
func sweep(t queue.Target, log zerolog.Logger) {
	if m, ok := t.(*queue.Maildirs); ok {
		if n := m.Sweep(); n > 0 {
			event.Emit(&log, event.Recovered).Int("files", n).Msg("removed what a crash left of popspool's deliveries in Maildir tmp/ folders")
		}
	}
	if p, ok := t.(*queue.Pickup); ok {
		if n := p.Sweep(); n > 0 {
			event.Emit(&log, event.Recovered).Int("files", n).Msg("removed what a crash left of popspool's deliveries in the pickup staging folder")
		}
	}
}

// newTarget makes the delivery target of cfg's deliver table, the
// target called name; log gets the SMTP/LMTP transcripts at trace level;
// a pickup:// target records in l.
func newTarget(cfg *config.Config, name string, log zerolog.Logger, l *ledger.Ledger) (queue.Target, error) {
	d := &cfg.Deliver
	key := "deliver.target"
	if name != config.DefaultTarget {
		key = "target." + name + ".url"
	}
	u, err := url.Parse(d.Target)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if u.Scheme == "maildir" {
		mayCreate := func(rcpt string) bool { return cfg.MaildirMayCreateAt(d, rcpt) }
		return &queue.Maildirs{Pattern: d.MaildirPattern(), MayCreate: mayCreate}, nil
	}
	if u.Scheme == "pickup" {
		return &queue.Pickup{Folder: pickup.Folder{Dir: d.PickupDir(), Ledger: l}}, nil
	}
	t, err := smtpc.ParseTarget(d.Target)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	opt, err := queue.SMTPOptions(d)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", name, err)
	}
	return &queue.SMTP{Target: t, Opt: opt, Log: log}, nil
}
