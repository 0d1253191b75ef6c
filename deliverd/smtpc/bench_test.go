package smtpc

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"

	"github.com/emersion/go-smtp"
)

// BenchmarkSend sends 10 KiB (and 1 MiB) messages over one connection to go-smtp's
// server, which discards them: the client's cost per message without disk.
// trace=off is deliverd below log.level = "trace"; trace=on hands every
// line to a function that drops it, the cost of building the transcript.
func BenchmarkSend(b *testing.B) {
	line := []byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n")
	for _, tc := range []struct {
		name  string
		lines int
		trace func(byte, string)
	}{{"trace=off", 140, nil}, {"trace=on", 140, func(byte, string) {}}, {"trace=off/1MB", 14000, nil}} {
		body := bytes.Repeat(line, tc.lines)
		b.Run(tc.name, func(b *testing.B) {
			srv := smtp.NewServer(discardBackend{})
			srv.Domain = "sink.test"
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go srv.Serve(ln)
			defer srv.Close()
			c, err := Dial(context.Background(), Target{Scheme: "smtp", Addr: ln.Addr().String()},
				Options{StartTLS: StartTLSNone, Helo: "bench.test", Trace: tc.trace})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				res, err := c.Send(context.Background(), "a@example.org", []string{"b@example.org"}, bytes.NewReader(body), int64(len(body)))
				if err != nil || !res.Rcpts[0].OK {
					b.Fatalf("Send: %+v %v", res, err)
				}
				if err := c.Reset(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type discardBackend struct{}

func (discardBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return discardBackend{}, nil }
func (discardBackend) Mail(string, *smtp.MailOptions) error        { return nil }
func (discardBackend) Rcpt(string, *smtp.RcptOptions) error        { return nil }
func (discardBackend) Data(r io.Reader) error                      { _, err := io.Copy(io.Discard, r); return err }
func (discardBackend) Reset()                                      {}
func (discardBackend) Logout() error                               { return nil }
