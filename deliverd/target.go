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
)

// newTarget makes the delivery target of the config's deliver.target;
// log gets the SMTP/LMTP transcripts at trace level; a pickup:// target
// records in l.
func newTarget(cfg *config.Config, log zerolog.Logger, l *ledger.Ledger) (queue.Target, error) {
	d := cfg.Deliver
	u, err := url.Parse(d.Target)
	if err != nil {
		return nil, fmt.Errorf("deliver.target: %w", err)
	}
	if u.Scheme == "maildir" {
		return &queue.Maildirs{Pattern: d.MaildirPattern(), MayCreate: cfg.MaildirMayCreate}, nil
	}
	if u.Scheme == "pickup" {
		return &queue.Pickup{Folder: pickup.Folder{Dir: d.PickupDir(), Ledger: l}}, nil
	}
	t, err := smtpc.ParseTarget(d.Target)
	if err != nil {
		return nil, fmt.Errorf("deliver.target: %w", err)
	}
	opt, err := queue.SMTPOptions(&d)
	if err != nil {
		return nil, err
	}
	return &queue.SMTP{Target: t, Opt: opt, Log: log}, nil
}
