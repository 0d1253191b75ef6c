package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/emersion/go-message/textproto"

	"example.org/popspool/rewrited/route"
	"example.org/popspool/shared/crash"
	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// plan is what rewrited will do with one file: the envelope to write and
// an optional tag header, or a rejection; and the reasoning, for explain.
type plan struct {
	env      envelope.Envelope
	tag      string // a header line to add above the message, CRLF included
	reject   *reject
	old      envelope.Envelope // the lines found at the top, replaced
	dup      *dupOutcome       // recipients dropped as duplicates: dups.go
	trace    []string
	warnings []string
	// src is the file the plan read, left open for rewrite to copy
	// from (each file is read once), off where its message starts and
	// size its size when opened; close releases it.
	src  *os.File
	off  int64
	size int64
}

// close closes the file the plan read, if it kept it open.
func (p *plan) close() {
	if p != nil && p.src != nil {
		p.src.Close()
		p.src = nil
	}
}

func (p *plan) note(format string, args ...any) {
	p.trace = append(p.trace, fmt.Sprintf(format, args...))
}

// makePlan reads the header of a file and decides. Only local I/O errors
// are returned; everything wrong with the message is a rejection. The
// plan keeps the file open (p.src); the caller closes the plan.
func (w *Worker) makePlan(ctx context.Context, path string, runFilter bool) (*plan, error) {
	f, size, err := spool.OpenSized(path)
	if err != nil {
		return nil, err
	}
	kept := false
	defer func() { // also on a panic while reading
		if !kept {
			f.Close()
		}
	}()
	p, err := w.readPlan(ctx, f, runFilter)
	if err != nil {
		return nil, err
	}
	p.src, p.size, kept = f, size, true
	return p, nil
}

func (w *Worker) readPlan(ctx context.Context, f *os.File, runFilter bool) (*plan, error) {
	p := &plan{}
	br, off, err := skipEnvelope(f, &p.old)
	if err != nil {
		p.reject = asReject(err)
		return p, nil // p.off 0: the broken lines are kept
	}
	defer release(&heads, br)
	p.off = off
	h, rej := readHeader(br)
	if rej != nil {
		p.reject = rej
		return p, nil
	}
	w.route(h, p)
	crash.Poison("rewrited.route", p.env.Sender)
	if p.reject == nil && runFilter && w.Filter.Command != nil {
		if err := w.runCommand(ctx, f, off, p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func readHeader(br *bufio.Reader) (textproto.Header, *reject) {
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return textproto.Header{}, &reject{event.EmptyMessage, "the file holds no message"}
	}
	lr := &io.LimitedReader{R: br, N: maxHeader}
	hr := pooled(&lines, lr)
	defer release(&lines, hr)
	h, err := textproto.ReadHeader(hr)
	switch {
	case lr.N == 0:
		return h, &reject{event.HeaderBroken, "header section larger than 1 MiB or without an end"}
	case err != nil:
		return h, &reject{event.HeaderBroken, "unreadable header: " + err.Error()}
	case h.Len() == 0:
		return h, &reject{event.HeaderBroken, "no header fields: not a mail message"}
	}
	return h, nil
}

// route applies routing, the loop guard and the block and allow lists.
func (w *Worker) route(h textproto.Header, p *plan) {
	r, err := route.Decide(w.Cfg, h)
	p.trace = append(p.trace, r.Trace...)
	if err != nil {
		p.reject = &reject{event.NoRecipient, err.Error()}
		return
	}
	if r.Unrouted {
		p.warnings = append(p.warnings, "unrouted")
	}
	hops, ok := w.Filter.Hops(h)
	p.note("loop guard: passed popspool %d time(s), at most %d allowed", hops, w.Filter.MaxHops)
	if !ok {
		p.reject = &reject{event.MailLoop, fmt.Sprintf("mail loop: the message passed popspool %d times (max_hops %d)", hops, w.Filter.MaxHops)}
		return
	}
	if reason, ok := w.Filter.Sender(r.Sender); !ok {
		p.reject = &reject{event.SenderBlocked, reason}
		return
	}
	kept, dropped := w.Filter.Recipients(r.Recipients)
	for _, d := range dropped {
		p.note("recipient %s dropped by the filter lists", d)
	}
	if len(kept) == 0 {
		p.reject = &reject{event.RcptBlocked, "every recipient is blocked: " + strings.Join(dropped, ", ")}
		return
	}
	p.env = envelope.Envelope{Sender: r.Sender, HasSender: true, Receivers: kept, Originals: r.Originals, Target: r.Target}
}

// runCommand feeds the message (without envelope lines) to the filter
// command.
func (w *Worker) runCommand(ctx context.Context, f *os.File, off int64, p *plan) error {
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	v := w.Filter.Command.Run(ctx, bufio.NewReaderSize(f, 64<<10))
	switch {
	case v.Broken != nil:
		p.warnings = append(p.warnings, v.Broken.Error())
		p.note("filter command failed (%v): message passes unfiltered", v.Broken)
	case v.Reject != "":
		p.reject = &reject{event.FilterReject, v.Reject}
	case v.Tag != "":
		p.tag = w.Filter.Command.TagHeader + ": " + v.Tag + "\r\n"
		p.note("filter command flagged the message: %s", strings.TrimSpace(p.tag))
	default:
		p.note("filter command passed the message")
	}
	return nil
}

func asReject(err error) *reject {
	var rej *reject
	if errors.As(err, &rej) {
		return rej
	}
	return &reject{event.RouteFailed, err.Error()}
}

// destination describes where the plan sends the file, for explain.
func (p *plan) destination() string {
	if p.reject != nil {
		return fmt.Sprintf("failed/ with X-Popspool-Failed: %d %s", p.reject.ev, p.reject.reason)
	}
	var b strings.Builder
	p.env.Write(&b)
	return "pickup/ with\n  " + strings.ReplaceAll(strings.TrimSpace(b.String()+p.tag), "\r\n", "\n  ")
}
