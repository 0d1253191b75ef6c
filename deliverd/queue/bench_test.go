package queue

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"example.org/popspool/deliverd/smtpc"
	"example.org/popspool/shared/spool"
	"example.org/popspool/spooltest/measure"
	"example.org/popspool/spooltest/postfix"
)

// BenchmarkDeliver delivers b.N messages of 10 KB from pickup/ with the
// real ledger (S records fsynced once per claimed group, D records with
// the next commit) and reports messages/s, ledger fsyncs per message, and
// the folder fsyncs of the spool per message (claims, moves; a Maildir
// target's own fsyncs are not counted), and the CPU (user + system) of
// the process per message, an in-process server's share included:
//
//	go test -run '^$' -bench Deliver -benchtime 1000x ./queue
//
// Targets: go-smtp's in-process server (discards), a Maildir, and the
// private Postfix (skipped without root or postfix).
func BenchmarkDeliver(b *testing.B) {
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("gosmtp/conns=%d", conns), func(b *testing.B) {
			addr := goSMTPDiscard(b)
			benchSMTP(b, "smtp://"+addr, conns, "alice@l")
		})
	}
	b.Run("maildir", func(b *testing.B) {
		q := newQueue(b, &Maildirs{Pattern: b.TempDir() + "/{user}"})
		benchRun(b, q, "alice@l")
	})
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("postfix/conns=%d", conns), func(b *testing.B) {
			pf := postfix.Start(b, postfix.Options{})
			benchSMTP(b, "smtp://"+pf.Addr, conns, pf.Address("alice"))
		})
	}
}

func benchSMTP(b *testing.B, url string, conns int, rcpt string) {
	target, err := smtpc.ParseTarget(url)
	if err != nil {
		b.Fatal(err)
	}
	q := newQueue(b, &SMTP{Target: target, Opt: smtpc.Options{StartTLS: smtpc.StartTLSNone, Helo: "bench.popspool.test"}})
	q.Cfg.Deliver.Connections = conns
	defer q.Target.Close()
	benchRun(b, q, rcpt)
}

func benchRun(b *testing.B, q *Queue, rcpt string) {
	for i := range b.N {
		putMsg(b, q, "sender@example.net", tenKB(i), rcpt)
	}
	dirs := &countDirSyncs{FS: q.S.FS()}
	q.S.SetFS(dirs)
	syncs := q.Ledger.Syncs
	b.ResetTimer()
	cpu := measure.CPU()
	start := time.Now()
	if err := q.Run(context.Background(), true); err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	cpu = measure.CPU() - cpu
	b.StopTimer()
	if q.Unsent != 0 {
		b.Fatalf("%d messages not delivered", q.Unsent)
	}
	b.ReportMetric(float64(b.N)/d.Seconds(), "msgs/s")
	b.ReportMetric(float64(q.Ledger.Syncs-syncs)/float64(b.N), "fsyncs/msg")
	b.ReportMetric(float64(dirs.n.Load())/float64(b.N), "dirsyncs/msg")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
}

// countDirSyncs counts the folder fsyncs of a spool.
type countDirSyncs struct {
	spool.FS
	n atomic.Int64
}

func (c *countDirSyncs) SyncDir(dir string) error {
	c.n.Add(1)
	return c.FS.SyncDir(dir)
}

// goSMTPDiscard runs go-smtp's server, reading and discarding each message.
func goSMTPDiscard(b *testing.B) string {
	srv := smtp.NewServer(discard{})
	srv.Domain = "sink.test"
	srv.MaxMessageBytes = 1 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

type discard struct{}

func (discard) NewSession(*smtp.Conn) (smtp.Session, error) { return discard{}, nil }
func (discard) Mail(string, *smtp.MailOptions) error        { return nil }
func (discard) Rcpt(string, *smtp.RcptOptions) error        { return nil }
func (discard) Data(r io.Reader) error                      { _, err := io.Copy(io.Discard, r); return err }
func (discard) Reset()                                      {}
func (discard) Logout() error                               { return nil }
