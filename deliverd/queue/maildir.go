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
	// W writes the files; nil: the shared writer (maildir.DeliverAll).
	W *maildir.Writer
}

// Sweep removes popspool's own leftovers from the Maildirs' tmp/ folders
// (maildir.Sweep); deliverd calls it at start, holding the spool lock.
func (m *Maildirs) Sweep() int { return maildir.Sweep(m.Pattern) }

// Send writes one copy per distinct Maildir, each with Return-Path and
// Delivered-To lines on top as a local delivery agent adds them.
func (m *Maildirs) Send(ctx context.Context, j Job) ([]Outcome, error) {
	return m.SendBatch(ctx, []Job{j})[0], nil
}

// SendBatch delivers the copies of all the jobs as one group
// (maildir.DeliverAll): one data sync and one fsync of each folder.
func (m *Maildirs) SendBatch(_ context.Context, jobs []Job) [][]Outcome {
	var mails []maildir.Mail
	for _, j := range jobs {
		for _, r := range j.Rcpts {
			mails = append(mails, maildir.Mail{
				Dir:    config.MaildirPath(m.Pattern, r),
				ID:     j.ID,
				Head:   fmt.Sprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n", j.Sender, r),
				Open:   j.Msg.Open,
				Retry:  j.Retry,
				Create: m.MayCreate == nil || m.MayCreate(r),
			})
		}
	}
	deliverAll := maildir.DeliverAll
	if m.W != nil {
		deliverAll = m.W.DeliverAll
	}
	res := deliverAll(mails)
	out := make([][]Outcome, len(jobs))
	k := 0
	for i, j := range jobs {
		for _, r := range j.Rcpts {
			out[i] = append(out[i], outcome(r, mails[k].Dir, res[k]))
			k++
		}
	}
	return out
}

func outcome(rcpt, dir string, r maildir.Result) Outcome {
	switch {
	case errors.Is(r.Err, maildir.ErrNoMaildir):
		return Outcome{Rcpt: rcpt, Code: 550, Enhanced: "5.1.1",
			Text: "no Maildir " + dir + " for this recipient; create it (maildirmake), name the address in deliver_to or aliases, or set deliver.maildir_create = true"}
	case r.Err != nil:
		return Outcome{Rcpt: rcpt, Temp: true, Text: r.Err.Error()}
	}
	return Outcome{Rcpt: rcpt, OK: true, Text: "delivered to " + dir}
}

// Idle does nothing: a Maildir holds no connection.
func (m *Maildirs) Idle() {}

// Close does nothing.
func (m *Maildirs) Close() error { return nil }
