package queue

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"

	"example.org/popspool/deliverd/dsn"
	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// maxHeader bounds the original header copied into a DSN.
const maxHeader = 64 << 10

// bounce records the failure in the ledger and, when failed holds
// recipients and someone is to be told, publishes one DSN for them into
// pickup/, where the queue delivers it like any message.
//
// Order (reliability.md §8.5): the F record naming the DSN's id is durable
// before the DSN is written. A crash in between sends the message back to
// pickup/; the retry meets the same failure, finds the id in the ledger
// and publishes the DSN under it, unless a file of that id exists or was
// delivered already. So one failure gives one DSN, crash or not.
func (q *Queue) bounce(path, id string, env envelope.Envelope, code string, failed []Outcome, expired, deferred bool) error {
	if len(failed) == 0 {
		return q.Ledger.Fail(id, code, "", nil)
	}
	header := readHeader(path)
	to, why := q.dsnRecipients(env, header)
	if len(to) == 0 {
		event.Emit(&q.Log, event.DSNSuppressed).Str("id", id).Strs("rcpts", rcptsOf(failed)).Str("reason", why).Msg("no DSN sent; the message goes to badmail/ all the same")
		return q.Ledger.Fail(id, code, "", nil)
	}
	rcpts := rcptsOf(failed)
	dsnID := q.Ledger.Bounced(id, rcpts)
	if dsnID == "" {
		dsnID = spool.NewID()
	}
	if err := q.Ledger.Fail(id, code, dsnID, rcpts); err != nil {
		return err
	}
	if q.dsnExists(dsnID) {
		q.Log.Debug().Str("id", id).Str("dsn", dsnID).Msg("DSN already sent for this failure")
		return nil
	}
	r := q.report(id, env, failed, expired, deferred, to)
	if err := q.publishDSN(dsnID, to, r, header); err != nil {
		event.Emit(&q.Log, event.DSNFailed).Str("id", id).Str("dsn", dsnID).Err(err).Msg("will retry the message, and the DSN with it")
		return err
	}
	event.Emit(&q.Log, event.DSNSent).Str("id", id).Str("dsn", dsnID).Strs("to", to).Strs("rcpts", rcpts).Msg("delivery status notification queued in pickup/")
	return nil
}

// dsnRecipients applies deliver.bounce_to. No DSN ever goes to the null
// sender or for a message that is itself a report (RFC 3464 §4, RFC 5321
// §4.5.5): that is how bounce loops are avoided.
func (q *Queue) dsnRecipients(env envelope.Envelope, header []byte) ([]string, string) {
	if env.HasSender && env.Sender == "" {
		return nil, "null sender: the message is a bounce"
	}
	if dsn.IsReport(header) {
		return nil, "the message is itself a report (multipart/report)"
	}
	pm := q.Cfg.Deliver.Postmaster
	if pm == "" {
		return nil, "no deliver.postmaster configured"
	}
	sender := ""
	if env.HasSender {
		sender = env.Sender
	}
	switch q.Cfg.Deliver.BounceTo {
	case "sender":
		if sender != "" {
			return []string{sender}, ""
		}
		return []string{pm}, "" // no X-Sender line: nobody else to tell
	case "both":
		if sender != "" && !strings.EqualFold(sender, pm) {
			return []string{pm, sender}, ""
		}
	}
	return []string{pm}, ""
}

func (q *Queue) report(id string, env envelope.Envelope, failed []Outcome, expired, deferred bool, to []string) dsn.Report {
	now := q.now()
	r := dsn.Report{ReportingMTA: q.hostname(), From: q.Cfg.Deliver.Postmaster, To: to, MessageID: id,
		Arrival: spool.IDTime(id), Expired: expired, Deferred: deferred}
	for _, o := range failed {
		st := dsn.Status(o.Code, o.Enhanced)
		switch {
		case o.Temp:
			st = "4.4.7" // RFC 3463: delivery time expired
		case o.Code == 0 && o.Enhanced != "":
			st = o.Enhanced // a local failure: no reply to take it from
		}
		r.Recipients = append(r.Recipients, dsn.Recipient{Final: o.Rcpt, Original: env.Originals[o.Rcpt],
			Status: st, Diagnostic: o.Text, SMTP: o.Code != 0, LastTry: now})
	}
	return r
}

// publishDSN writes the DSN as a spool file with a null sender and moves
// it into pickup/.
func (q *Queue) publishDSN(dsnID string, to []string, r dsn.Report, header []byte) error {
	p, err := q.S.Create(dsnID)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(p)
	err = envelope.Envelope{HasSender: true, Receivers: to}.Write(w)
	if err == nil {
		err = dsn.Write(w, r, header, q.now())
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = p.Seal()
	}
	if err != nil {
		p.Abort()
		return err
	}
	if _, err := q.S.Move(p.Name(), spool.Pickup, dsnID); err != nil {
		os.Remove(p.Name())
		return err
	}
	return nil
}

// dsnExists reports whether the DSN of that id was published already:
// delivered or tried (ledger), or a file in one of the folders it can be in.
func (q *Queue) dsnExists(dsnID string) bool {
	if q.Ledger.Delivered(dsnID) || q.Ledger.Tried(dsnID) {
		return true
	}
	for _, dir := range []string{q.S.Dir(spool.Pickup), q.S.Dir(spool.Deferred), q.S.Dir(spool.Badmail), q.S.TmpDir()} {
		if _, err := os.Stat(filepath.Join(dir, dsnID+".eml")); err == nil {
			return true
		}
	}
	return false
}

func (q *Queue) hostname() string {
	if q.Hostname != "" {
		return q.Hostname
	}
	if h := q.Cfg.Deliver.Helo; h != "" {
		return h
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// readHeader returns the header section of the message in a spool file
// (after the envelope lines, up to the blank line), at most maxHeader
// bytes; nil when unreadable.
func readHeader(path string) []byte {
	_, msg, err := readEnvelope(path)
	if err != nil {
		return nil
	}
	defer msg.close()
	r, err := msg.Open()
	if err != nil {
		return nil
	}
	defer r.Close()
	br := bufio.NewReader(io.LimitReader(r, maxHeader))
	var h bytes.Buffer
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimRight(line, "\r\n")) == 0 && (len(line) > 0 || h.Len() > 0) {
			break // the blank line ends the header
		}
		h.Write(line)
		if err != nil {
			break
		}
	}
	return h.Bytes()
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
