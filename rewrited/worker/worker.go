// Package worker is rewrited's loop: it takes each file from incoming/,
// decides its envelope, and moves it to pickup/, or to failed/ with the
// reason. rewrited keeps no state: its transform strips any envelope lines
// it finds before adding its own, so redoing it after a crash, or after an
// operator moved a file back, is safe.
package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/rs/zerolog"

	"example.org/popspool/rewrited/route"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// maxHeader bounds the header section; a longer one is treated as broken
// (go-message's own cap for message.Read is the same 1 MiB).
const maxHeader = 1 << 20

// Worker routes the files of one spool.
type Worker struct {
	S   *spool.Spool
	Cfg *config.Config
	Log zerolog.Logger
}

// reject is a message-level failure: the file goes to failed/.
type reject struct {
	ev     event.ID
	reason string
}

func (r *reject) Error() string { return r.reason }

// Recover finishes what a crash left in tmp/rewrited: half-written
// replacements are deleted, claimed files are routed again.
func (w *Worker) Recover() error {
	eml, part, other, err := w.S.Leftovers()
	if err != nil {
		return err
	}
	for _, p := range append(part, other...) {
		if err := w.S.Remove(p); err != nil {
			return err
		}
	}
	for _, p := range eml {
		id, _ := spool.IDOf(filepath.Base(p))
		event.Emit(&w.Log, event.Recovered).Str("id", id).Msg("routing a file claimed before a crash")
		if err := w.route(p, id); err != nil {
			return err
		}
	}
	return nil
}

// Run routes files as they arrive until ctx ends; with once, until
// incoming/ is empty.
func (w *Worker) Run(ctx context.Context, once bool) error {
	watch := w.S.Watch(ctx, w.Cfg.Rescan.D(), spool.Incoming)
	for {
		names, wait, err := w.S.Ready(spool.Incoming)
		if err != nil {
			return err
		}
		for _, n := range names {
			if ctx.Err() != nil {
				return nil
			}
			if err := w.handle(n); err != nil {
				return err
			}
		}
		if once && len(names) == 0 && wait == 0 {
			return nil
		}
		if len(names) == 0 && !watch.Wait(ctx, wait) {
			return nil
		}
	}
}

// handle claims one file and routes it. Only errors that must stop the
// daemon (a failed folder fsync) are returned.
func (w *Worker) handle(name string) error {
	path, id, err := w.S.Claim(spool.Incoming, name)
	if spool.IsGone(err) {
		event.Emit(&w.Log, event.FileVanished).Str("file", name).Msg("someone else took it")
		return nil
	}
	if err != nil {
		return w.ioError(err, name)
	}
	return w.route(path, id)
}

func (w *Worker) route(path, id string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			event.Emit(&w.Log, event.UnexpectedPanic).Str("id", id).Interface("panic", p).Msg("moving the file to failed/")
			err = w.finish(path, id, envelope.Envelope{}, &reject{event.UnexpectedPanic, fmt.Sprint("internal error: ", p)})
		}
	}()
	env, rerr := w.decide(path)
	return w.finish(path, id, env, rerr)
}

// finish writes the routed (or failed) version and moves it on.
func (w *Worker) finish(path, id string, env envelope.Envelope, rerr error) error {
	var rej *reject
	folder := spool.Pickup
	if errors.As(rerr, &rej) {
		folder = spool.Failed
		env = envelope.Envelope{Failed: fmt.Sprintf("%d %s", rej.ev, rej.reason)}
	} else if rerr != nil {
		return w.putBack(path, id, rerr)
	}
	if err := w.S.Replace(id, func(out *os.File) error { return rewrite(path, env, out) }); err != nil {
		return w.putBack(path, id, err)
	}
	dst, err := w.S.Move(path, folder, id)
	if err != nil {
		return w.putBack(path, id, err)
	}
	if rej != nil {
		event.Emit(&w.Log, rej.ev).Str("id", id).Str("reason", rej.reason).Str("path", dst).Msg("moved to failed/")
	} else {
		event.Emit(&w.Log, event.Routed).Str("id", id).Str("from", env.Sender).Strs("to", env.Receivers).Msg("routed to pickup/")
	}
	return nil
}

// decide reads the header of a claimed file and returns its envelope, or
// a *reject for a message that cannot be routed.
func (w *Worker) decide(path string) (envelope.Envelope, error) {
	f, err := os.Open(path)
	if err != nil {
		return envelope.Envelope{}, err
	}
	defer f.Close()
	br, _, err := skipEnvelope(f)
	if err != nil {
		return envelope.Envelope{}, err
	}
	if _, err := br.Peek(1); errors.Is(err, io.EOF) {
		return envelope.Envelope{}, &reject{event.EmptyMessage, "the file holds no message"}
	}
	lr := &io.LimitedReader{R: br, N: maxHeader}
	h, err := textproto.ReadHeader(bufio.NewReader(lr))
	switch {
	case lr.N == 0:
		return envelope.Envelope{}, &reject{event.HeaderBroken, "header section larger than 1 MiB or without an end"}
	case err != nil:
		return envelope.Envelope{}, &reject{event.HeaderBroken, "unreadable header: " + err.Error()}
	case h.Len() == 0:
		return envelope.Envelope{}, &reject{event.HeaderBroken, "no header fields: not a mail message"}
	}
	r, err := route.Decide(w.Cfg, h)
	if err != nil {
		return envelope.Envelope{}, &reject{event.NoRecipient, err.Error()}
	}
	return envelope.Envelope{Sender: r.Sender, HasSender: true, Receivers: r.Recipients}, nil
}

// skipEnvelope positions a reader after any envelope lines at the top of
// f and returns the offset of the message proper.
func skipEnvelope(f *os.File) (*bufio.Reader, int64, error) {
	cr := &counter{r: f}
	br := bufio.NewReaderSize(cr, 64<<10)
	if _, err := envelope.Read(br); err != nil {
		return nil, 0, &reject{event.RouteFailed, "bad envelope line: " + err.Error()}
	}
	return br, cr.n - int64(br.Buffered()), nil
}

// rewrite writes env and then the message of the file at path, byte for
// byte, into out.
func rewrite(path string, env envelope.Envelope, out *os.File) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, off, err := skipEnvelope(f)
	var rej *reject
	if errors.As(err, &rej) {
		off = 0 // keep the broken lines: they are part of what failed
	} else if err != nil {
		return err
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	if err := env.Write(bw); err != nil {
		return err
	}
	if _, err := io.Copy(bw, f); err != nil {
		return fmt.Errorf("copy message: %w", err)
	}
	return bw.Flush()
}

// putBack returns a claimed file to incoming/ after an I/O error (a full
// disk, say), so it is retried; a failed folder fsync stops the daemon.
func (w *Worker) putBack(path, id string, cause error) error {
	var dse *spool.DirSyncError
	if errors.As(cause, &dse) {
		event.Emit(&w.Log, event.DirSyncFailed).Err(cause).Msg("exiting")
		return cause
	}
	if _, err := w.S.Move(path, spool.Incoming, id); err != nil {
		return w.ioError(fmt.Errorf("%v; and returning it to incoming/: %w", cause, err), id)
	}
	return w.ioError(cause, id)
}

func (w *Worker) ioError(err error, name string) error {
	var dse *spool.DirSyncError
	if errors.As(err, &dse) {
		event.Emit(&w.Log, event.DirSyncFailed).Err(err).Msg("exiting")
		return err
	}
	ev := event.SpoolIO
	if spool.IsNoSpace(err) {
		ev = event.DiskFull
	}
	event.Emit(&w.Log, ev).Err(err).Str("file", name).Msg("will retry")
	time.Sleep(time.Second)
	return nil
}

type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
