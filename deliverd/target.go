package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"

	"github.com/rs/zerolog"

	"example.org/popspool/deliverd/queue"
	"example.org/popspool/deliverd/smtpc"
	"example.org/popspool/shared/config"
)

// newTarget makes the delivery target of the config's deliver.target;
// log gets the SMTP/LMTP transcripts at trace level.
func newTarget(cfg *config.Config, log zerolog.Logger) (queue.Target, error) {
	d := cfg.Deliver
	u, err := url.Parse(d.Target)
	if err != nil {
		return nil, fmt.Errorf("deliver.target: %w", err)
	}
	if u.Scheme == "maildir" {
		return &queue.Maildirs{Pattern: u.Path, MayCreate: cfg.MaildirMayCreate}, nil
	}
	t, err := smtpc.ParseTarget(d.Target)
	if err != nil {
		return nil, fmt.Errorf("deliver.target: %w", err)
	}
	opt := smtpc.Options{Helo: d.Helo, StartTLS: d.StartTLS, Username: d.Username}
	if opt.Password, err = d.Secret(); err != nil {
		return nil, fmt.Errorf("deliver: %w", err)
	}
	if d.CAFile != "" {
		pem, err := os.ReadFile(d.CAFile)
		if err != nil {
			return nil, fmt.Errorf("deliver.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("deliver.ca_file %s: no PEM certificate in it", d.CAFile)
		}
		opt.TLSConfig = &tls.Config{RootCAs: pool}
	}
	return &queue.SMTP{Target: t, Opt: opt, Log: log}, nil
}
