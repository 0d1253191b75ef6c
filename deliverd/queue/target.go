package queue

import (
	"context"
	"io"
	"os"

	"example.org/popspool/shared/spool"
)

// Msg is the message part of a claimed spool file: the bytes after the
// envelope lines.
type Msg struct {
	Path   string
	Offset int64
	Size   int64
	// f is the claimed file, held open from the read of its envelope
	// (readEnvelope) until the queue settles it, so that the envelope
	// and every read of the message come from one version of the file
	// (docs/design-notes.md, "One descriptor a message"); nil: the
	// message is opened by Path.
	f *os.File
}

// Open returns a reader of the message, streamed from the file (a
// spool.Section, which the spool's Copy copies in the kernel). The
// readers of one Msg read it one after the other, never at once.
func (m Msg) Open() (io.ReadCloser, error) {
	if m.f == nil {
		return spool.OpenSection(m.Path, m.Offset, m.Size)
	}
	return spool.SectionOf(m.f, m.Offset, m.Size)
}

// close closes the held file, if any; again, it does nothing harmful (the
// os.File refuses a second close). The queue closes it before it renames
// or removes the file: Windows does neither to an open file.
func (m Msg) close() {
	if m.f != nil {
		m.f.Close()
	}
}

// Outcome is one recipient's result.
type Outcome struct {
	Rcpt string
	OK   bool
	Temp bool   // with !OK: retry later; else permanent
	Text string // the server's reply or the error, for the spool file and the log
	// Code and Enhanced are the server's reply (0 and "" when the verdict
	// is not a reply: a network or Maildir error), for the DSN.
	Code     int
	Enhanced string
	// TooBig: refused before MAIL because the message exceeds the
	// server's SIZE (RFC 1870).
	TooBig bool
}

// Job is one message to deliver.
type Job struct {
	ID     string
	Sender string   // "" is the null sender
	Rcpts  []string // the recipients still to deliver to
	// ORCPT maps a recipient to its original address (RFC 3461), sent when
	// the config asks for DSN; nil otherwise.
	ORCPT map[string]string
	Msg   Msg
	Retry bool // an earlier attempt may have delivered it
}

// NetError is a failure of the connection rather than a reply. AfterDot
// marks the one window no SMTP client can close (RFC 1047): the message was
// sent in full and the reply never came, so it may have been delivered.
type NetError struct {
	AfterDot bool
	// Refused: the server refused the session with a 5xx (greeting, EHLO,
	// STARTTLS, AUTH). Still retried, as everything that is not a verdict
	// on a recipient, but logged as a refusal an operator must look at.
	Refused bool
	// Lost: the session broke off (a cut connection, a 421) after it was
	// set up, before the final dot; a network fault, not a setting.
	Lost bool
	Err  error
}

func (e *NetError) Error() string {
	if e.AfterDot {
		return "connection lost after the final dot, before the reply: " + e.Err.Error()
	}
	return e.Err.Error()
}

func (e *NetError) Unwrap() error { return e.Err }

// Target delivers messages: a Maildir tree, or an SMTP or LMTP server. It
// must be safe for concurrent use: the queue runs up to
// deliver.connections Sends at once.
type Target interface {
	// Send delivers j. A non-nil error concerns the whole message
	// (typically a *NetError); the Outcomes returned with it are the
	// verdicts that arrived before it, and the other recipients are
	// retried. Without an error there is one Outcome per recipient.
	Send(ctx context.Context, j Job) ([]Outcome, error)
	// Idle is called when the queue is empty: a good moment to close
	// connections.
	Idle()
	Close() error
}

// Batcher is a Target that delivers a claimed group of messages at once,
// sharing their durability work (Maildirs: one data sync and one fsync
// of each folder for the group, maildir.DeliverAll). The queue hands it
// whole claims instead of one message per Send.
type Batcher interface {
	Target
	// SendBatch delivers the jobs and returns one Outcome per recipient
	// for each job, in order; failures are Outcomes (Temp when worth a
	// retry), never an error for the group.
	SendBatch(ctx context.Context, jobs []Job) [][]Outcome
}
