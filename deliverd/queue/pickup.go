package queue

import (
	"context"

	"example.org/popspool/deliverd/pickup"
)

// Pickup delivers into a pickup folder (pickup:// target) that the IIS
// SMTP service or Exchange's Transport service takes messages from: one
// file per message, with the envelope in X-Sender and X-Receiver lines.
type Pickup struct {
	Folder pickup.Folder
}

// Sweep removes what a crash left in the staging folder (pickup.Sweep);
// deliverd calls it at start, holding the spool lock.
func (p *Pickup) Sweep() int { return p.Folder.Sweep() }

// Send writes one file for all of j's recipients; its verdict is theirs.
func (p *Pickup) Send(_ context.Context, j Job) ([]Outcome, error) {
	out := make([]Outcome, 0, len(j.Rcpts))
	verdict := p.one(j)
	for _, r := range j.Rcpts {
		o := verdict
		o.Rcpt = r
		out = append(out, o)
	}
	return out, nil
}

func (p *Pickup) one(j Job) Outcome {
	body, err := j.Msg.Open()
	if err != nil {
		return Outcome{Temp: true, Text: err.Error()}
	}
	defer body.Close()
	dup, err := p.Folder.Deliver(j.ID, j.Sender, j.Rcpts, body)
	if err != nil {
		return Outcome{Temp: true, Text: err.Error()}
	}
	text := "placed in pickup folder " + p.Folder.Dir
	if dup {
		text = "already placed in pickup folder " + p.Folder.Dir + " by an earlier attempt"
	}
	return Outcome{OK: true, Text: text}
}

// Idle does nothing: a folder holds no connection.
func (p *Pickup) Idle() {}

// Close does nothing.
func (p *Pickup) Close() error { return nil }
