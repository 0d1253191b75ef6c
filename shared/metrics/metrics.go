// Package metrics serves a daemon's counters to Prometheus (or Telegraf,
// or Grafana Alloy) in the plain text exposition format, written by hand:
// a few counters do not need the client library (docs/design-notes.md).
//
// Everything comes from the daemon's status.Tracker, so from the same log
// lines an operator reads: lines per event ID (failures by event),
// messages and bytes per stage (the lines' size), time spent (their
// elapsed_ms: a fetch, a poll, a routing, a delivery), queue depths and
// ages, and fetchd's per-account polls. It is off unless
// the config's [metrics] table gives the daemon an address.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"example.org/popspool/shared/event"
	"example.org/popspool/shared/status"
)

// stages maps the events that end a message's passage through a stage to
// the stage's name in popspool_messages_total: each message that ends a
// stage is one such line. Fetched, Routed, Delivered and the moves to
// failed/ carry its size and elapsed_ms.
var stages = map[event.ID]string{
	event.Fetched:         "fetched",
	event.Routed:          "routed",
	event.UnexpectedPanic: "failed", // in rewrited only: stageOf
	event.RouteFailed:     "failed",
	event.HeaderBroken:    "failed",
	event.NoRecipient:     "failed",
	event.RewriteStuck:    "failed",
	event.EmptyMessage:    "failed",
	event.MailLoop:        "failed",
	event.SenderBlocked:   "failed",
	event.RcptBlocked:     "failed",
	event.FilterReject:    "failed",
	event.RouteTimeout:    "failed",
	event.Unreadable:      "failed",
	event.Delivered:       "delivered",
	event.Deferred:        "deferred",
	event.Bounced:         "badmail",
	event.Expired:         "badmail",
	event.NoEnvelope:      "badmail",
	event.SuspectSetAside: "badmail",
	event.DeliverPanic:    "badmail",
	event.UnreadableFile:  "badmail",
	event.LocalRepeated:   "badmail",
}

// stageOf is the stage event id ends in daemon, or "". Event 1018 is
// shared: in rewrited it is the line of the move to failed/, in deliverd
// it comes with the 4021 that moves the file to badmail/.
func stageOf(daemon string, id event.ID) string {
	if id == event.UnexpectedPanic && daemon != "rewrited" {
		return ""
	}
	return stages[id]
}

// Write writes f as Prometheus text.
func Write(w io.Writer, f status.File) {
	d := strconv.Quote(f.Daemon)
	p := &printer{w: w}
	p.head("popspool_up", "gauge", "1 while the daemon runs.")
	p.printf("popspool_up{daemon=%s,version=%s} 1\n", d, strconv.Quote(f.Version))
	p.head("popspool_start_time_seconds", "gauge", "When the daemon started, in Unix time.")
	p.printf("popspool_start_time_seconds{daemon=%s} %d\n", d, f.Started.Unix())
	if !f.LastActivity.IsZero() {
		p.head("popspool_last_activity_timestamp_seconds", "gauge", "When the daemon last logged an event.")
		p.printf("popspool_last_activity_timestamp_seconds{daemon=%s} %d\n", d, f.LastActivity.Unix())
	}
	ids := sortedKeys(f.Events)
	p.head("popspool_events_total", "counter", "Log lines per event ID since start (docs/events.md); failures are the warn and error ones.")
	for _, id := range ids {
		c := f.Events[id]
		p.printf("popspool_events_total{daemon=%s,event=\"%d\",level=%s} %d\n", d, id, strconv.Quote(c.Level), c.N)
	}
	writeStages(p, d, f)
	p.head("popspool_event_duration_seconds", "summary", "Time taken, from the elapsed_ms field of the events that carry one.")
	for _, id := range ids {
		if c := f.Events[id]; c.Timed > 0 {
			p.printf("popspool_event_duration_seconds_sum{daemon=%s,event=\"%d\"} %g\n", d, id, c.ElapsedMS/1000)
			p.printf("popspool_event_duration_seconds_count{daemon=%s,event=\"%d\"} %d\n", d, id, c.Timed)
		}
	}
	writeFolders(p, f)
	writeAccounts(p, f)
}

func writeStages(p *printer, d string, f status.File) {
	n, b := map[string]uint64{}, map[string]int64{}
	for _, s := range stages {
		n[s], b[s] = 0, 0
	}
	for id, c := range f.Events {
		if s := stageOf(f.Daemon, event.ID(id)); s != "" {
			n[s] += c.N
			b[s] += c.Bytes
		}
	}
	names := sortedKeys(n)
	p.head("popspool_messages_total", "counter", "Messages that ended a stage: fetched, routed, failed, delivered, deferred, badmail.")
	for _, s := range names {
		p.printf("popspool_messages_total{daemon=%s,stage=%q} %d\n", d, s, n[s])
	}
	p.head("popspool_message_bytes_total", "counter", "Their bytes, where the event carries a size.")
	for _, s := range names {
		p.printf("popspool_message_bytes_total{daemon=%s,stage=%q} %d\n", d, s, b[s])
	}
}

func writeFolders(p *printer, f status.File) {
	if len(f.Folders) == 0 {
		return
	}
	p.head("popspool_folder_files", "gauge", "Files waiting in each spool folder.")
	for _, q := range status.Queues {
		if c, ok := f.Folders[q]; ok {
			p.printf("popspool_folder_files{folder=%q} %d\n", q, c.Files)
		}
	}
	p.head("popspool_folder_bytes", "gauge", "Their bytes.")
	for _, q := range status.Queues {
		if c, ok := f.Folders[q]; ok {
			p.printf("popspool_folder_bytes{folder=%q} %d\n", q, c.Bytes)
		}
	}
	p.head("popspool_folder_oldest_seconds", "gauge", "Age of the oldest file (since it was last written); 0 when empty.")
	for _, q := range status.Queues {
		if c, ok := f.Folders[q]; ok {
			age := 0.0
			if c.Files > 0 {
				age = time.Since(c.Oldest).Seconds()
			}
			p.printf("popspool_folder_oldest_seconds{folder=%q} %.0f\n", q, age)
		}
	}
}

func writeAccounts(p *printer, f status.File) {
	if len(f.Accounts) == 0 {
		return
	}
	names := sortedKeys(f.Accounts)
	p.head("popspool_account_last_poll_timestamp_seconds", "gauge", "When fetchd last polled the account.")
	for _, n := range names {
		if a := f.Accounts[n]; !a.LastPoll.IsZero() {
			p.printf("popspool_account_last_poll_timestamp_seconds{account=%q} %d\n", n, a.LastPoll.Unix())
		}
	}
	p.head("popspool_account_last_poll_ok", "gauge", "1 if the account's last poll succeeded, 0 if an error came after it.")
	for _, n := range names {
		a := f.Accounts[n]
		ok := 1
		if a.LastError != nil && a.LastError.Time.After(a.LastOK) {
			ok = 0
		}
		p.printf("popspool_account_last_poll_ok{account=%q} %d\n", n, ok)
	}
	p.head("popspool_account_fetched_total", "counter", "Messages fetched from the account since start.")
	for _, n := range names {
		p.printf("popspool_account_fetched_total{account=%q} %d\n", n, f.Accounts[n].Total)
	}
}

type printer struct{ w io.Writer }

func (p *printer) head(name, typ, help string) {
	fmt.Fprintf(p.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func (p *printer) printf(format string, args ...any) { fmt.Fprintf(p.w, format, args...) }

func sortedKeys[K int | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Handler serves /metrics from snapshot.
func Handler(snapshot func() status.File) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		Write(w, snapshot())
	})
	return mux
}

// Server is a running metrics endpoint.
type Server struct {
	Addr net.Addr
	srv  *http.Server
	done chan error
}

// Listen starts serving /metrics on addr.
func Listen(addr string, snapshot func() status.File) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: l.Addr(), done: make(chan error, 1),
		srv: &http.Server{Handler: Handler(snapshot), ReadHeaderTimeout: 10 * time.Second}}
	go func() { s.done <- s.srv.Serve(l) }()
	return s, nil
}

// Close stops the endpoint.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
