package queue

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"example.org/popspool/deliverd/smtpc"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
)

// SMTP delivers to an SMTP or LMTP server over a pool of connections: at
// most as many as Sends run at once (the queue bounds them by
// deliver.connections), each reused for the next message until the queue
// is idle or the connection breaks.
type SMTP struct {
	Target smtpc.Target
	Opt    smtpc.Options
	// Log gets a transcript of each connection when it logs at trace
	// level (log.level = "trace"); the zero Logger gets none.
	Log zerolog.Logger

	mu    sync.Mutex
	idle  []*smtpc.Conn
	conns atomic.Uint64 // connections dialled, to tell their transcripts apart
}

// Send hands the message to the server; each recipient gets the server's
// verdict.
func (s *SMTP) Send(ctx context.Context, j Job) ([]Outcome, error) {
	c, err := s.get(ctx)
	if err != nil {
		return nil, err
	}
	body, err := j.Msg.Open()
	if err != nil {
		s.put(c)
		return nil, err
	}
	defer body.Close()
	res, err := c.SendWith(ctx, j.Sender, j.Rcpts, body, j.Msg.Size, smtpc.SendOptions{ORCPT: j.ORCPT})
	s.put(c)
	out := outcomes(res)
	if err != nil {
		var se *smtpc.Error
		afterDot := errors.As(err, &se) && se.AfterDot
		return out, &NetError{AfterDot: afterDot, Lost: !afterDot, Err: err}
	}
	return out, nil
}

// get takes an idle connection that still works, or dials a new one.
func (s *SMTP) get(ctx context.Context) (*smtpc.Conn, error) {
	s.mu.Lock()
	for len(s.idle) > 0 {
		c := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		if !c.Broken() {
			s.mu.Unlock()
			return c, nil
		}
		c.Close()
	}
	s.mu.Unlock()
	c, err := smtpc.Dial(ctx, s.Target, s.options())
	if err != nil {
		ne := &NetError{Err: fmt.Errorf("%s: %w", s.Target, err)}
		var se *smtpc.Error
		if errors.As(err, &se) && se.Code/100 == 5 {
			ne.Refused = true // a 5xx greeting, EHLO, STARTTLS or AUTH: not a network fault
		}
		return nil, ne
	}
	return c, nil
}

// options are Opt, with a transcript for a new connection at trace level.
func (s *SMTP) options() smtpc.Options {
	o := s.Opt
	if o.Trace == nil && event.TraceOn(&s.Log) {
		o.Trace = event.Transcript(s.Log.With().Str("target", s.Target.String()).Uint64("conn", s.conns.Add(1)).Logger())
	}
	return o
}

func (s *SMTP) put(c *smtpc.Conn) {
	if c.Broken() {
		c.Close()
		return
	}
	s.mu.Lock()
	s.idle = append(s.idle, c)
	s.mu.Unlock()
}

// outcomes converts the recipients that got a verdict.
func outcomes(res smtpc.Result) []Outcome {
	var out []Outcome
	for _, st := range res.Rcpts {
		if st.Code == 0 {
			continue
		}
		text := strings.TrimSpace(fmt.Sprintf("%d %s %s", st.Code, st.Enhanced, strings.ReplaceAll(st.Msg, "\n", " ")))
		out = append(out, Outcome{Rcpt: st.Rcpt, OK: st.OK, Temp: st.Temporary, Text: text,
			Code: st.Code, Enhanced: st.Enhanced, TooBig: st.Code == 552 && strings.HasPrefix(st.Msg, "smtpc: message size")})
	}
	return out
}

// Idle closes the connections (QUIT) while there is nothing to send.
func (s *SMTP) Idle() {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// Close closes the connections.
func (s *SMTP) Close() error {
	s.Idle()
	return nil
}

// SMTPOptions makes the client options of the [deliver] section: HELO,
// STARTTLS mode, AUTH with its password (read afresh), the trusted CAs
// of ca_file, and pipelining.
func SMTPOptions(d *config.Deliver) (smtpc.Options, error) {
	opt := smtpc.Options{Helo: d.Helo, StartTLS: d.StartTLS, Username: d.Username, NoPipelining: !d.Pipelines()}
	var err error
	if opt.Password, err = d.Secret(); err != nil {
		return opt, fmt.Errorf("deliver: %w", err)
	}
	if d.CAFile != "" {
		pem, err := os.ReadFile(d.CAFile)
		if err != nil {
			return opt, fmt.Errorf("deliver.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return opt, fmt.Errorf("deliver.ca_file %s: no PEM certificate in it", d.CAFile)
		}
		opt.TLSConfig = &tls.Config{RootCAs: pool}
	}
	return opt, nil
}
