package queue

import (
	"context"
	"errors"
	"fmt"

	"example.org/popspool/deliverd/maildir"
	"example.org/popspool/shared/config"
)

// Maildirs delivers into one Maildir per recipient, from a pattern such as
// /var/mail/{user}.
type Maildirs struct {
	Pattern string
	// MayCreate says whether a recipient's missing Maildir may be
	// created (config.MaildirMayCreate); nil: any may.
	MayCreate func(rcpt string) bool
}

// Sweep removes popspool's own leftovers from the Maildirs' tmp/ folders
// (maildir.Sweep); deliverd calls it at start, holding the spool lock.
func (m *Maildirs) Sweep() int { return maildir.Sweep(m.Pattern) }

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
	dir := config.MaildirPath(m.Pattern, rcpt)
	create := m.MayCreate == nil || m.MayCreate(rcpt)
	_, err = maildir.Deliver(dir, id, head, body, retry, create)
	if errors.Is(err, maildir.ErrNoMaildir) {
		return Outcome{Rcpt: rcpt, Code: 550, Enhanced: "5.1.1",
			Text: "no Maildir " + dir + " for this recipient; create it (maildirmake), name the address in deliver_to or aliases, or set deliver.maildir_create = true"}
	}
	if err != nil {
		return Outcome{Rcpt: rcpt, Temp: true, Text: err.Error()}
	}
	return Outcome{Rcpt: rcpt, OK: true, Text: "delivered to " + dir}
}

// Idle does nothing: a Maildir holds no connection.
func (m *Maildirs) Idle() {}

// Close does nothing.
func (m *Maildirs) Close() error { return nil }
