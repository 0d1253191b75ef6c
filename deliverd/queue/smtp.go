package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"example.org/popspool/deliverd/smtpc"
)

// SMTP delivers to an SMTP or LMTP server, reusing one connection across
// messages until the queue is idle.
type SMTP struct {
	Target smtpc.Target
	Opt    smtpc.Options
	conn   *smtpc.Conn
}

// Send hands the message to the server; each recipient gets the server's
// verdict.
func (s *SMTP) Send(ctx context.Context, id, sender string, rcpts []string, msg Msg, retry bool) ([]Outcome, error) {
	if s.conn == nil || s.conn.Broken() {
		s.drop()
		c, err := smtpc.Dial(ctx, s.Target, s.Opt)
		if err != nil {
			return nil, &NetError{Err: fmt.Errorf("%s: %w", s.Target, err)}
		}
		s.conn = c
	}
	body, err := msg.Open()
	if err != nil {
		return nil, err
	}
	defer body.Close()
	res, err := s.conn.Send(ctx, sender, rcpts, body, msg.Size)
	out := outcomes(res)
	if err != nil {
		s.drop()
		var se *smtpc.Error
		return out, &NetError{AfterDot: errors.As(err, &se) && se.AfterDot, Err: err}
	}
	return out, nil
}

// outcomes converts the recipients that got a verdict.
func outcomes(res smtpc.Result) []Outcome {
	var out []Outcome
	for _, st := range res.Rcpts {
		if st.Code == 0 {
			continue
		}
		text := strings.TrimSpace(fmt.Sprintf("%d %s %s", st.Code, st.Enhanced, strings.ReplaceAll(st.Msg, "\n", " ")))
		out = append(out, Outcome{Rcpt: st.Rcpt, OK: st.OK, Temp: st.Temporary, Text: text})
	}
	return out
}

func (s *SMTP) drop() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// Idle closes the connection (QUIT) while there is nothing to send.
func (s *SMTP) Idle() { s.drop() }

// Close closes the connection.
func (s *SMTP) Close() error {
	s.drop()
	return nil
}
