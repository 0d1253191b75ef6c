package queue

import (
	"context"
	"fmt"

	"example.org/popspool/deliverd/maildir"
)

// Maildirs delivers into one Maildir per recipient, from a pattern such as
// /var/mail/{user}.
type Maildirs struct {
	Pattern string
}

// Send writes one copy per distinct Maildir, each with Return-Path and
// Delivered-To lines on top as a local delivery agent adds them.
func (m *Maildirs) Send(_ context.Context, j Job) ([]Outcome, error) {
	out := make([]Outcome, 0, len(j.Rcpts))
	for _, r := range j.Rcpts {
		out = append(out, m.one(j.ID, j.Sender, r, j.Msg, j.Retry))
	}
	return out, nil
}

func (m *Maildirs) one(id, sender, rcpt string, msg Msg, retry bool) Outcome {
	body, err := msg.Open()
	if err != nil {
		return Outcome{Rcpt: rcpt, Temp: true, Text: err.Error()}
	}
	defer body.Close()
	head := fmt.Sprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n", sender, rcpt)
	dir := maildir.Dir(m.Pattern, rcpt)
	if _, err := maildir.Deliver(dir, id, head, body, retry); err != nil {
		return Outcome{Rcpt: rcpt, Temp: true, Text: err.Error()}
	}
	return Outcome{Rcpt: rcpt, OK: true, Text: "delivered to " + dir}
}

// Idle does nothing: a Maildir holds no connection.
func (m *Maildirs) Idle() {}

// Close does nothing.
func (m *Maildirs) Close() error { return nil }
