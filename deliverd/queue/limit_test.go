package queue

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"example.org/popspool/deliverd/smtpc"
)

// lockedBuf is a log sink for the queue's goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A reply over smtpc's limits, at EHLO (read by smtpc before STARTTLS,
// or by go-smtp) and at RCPT, defers the message with event 4025.
func TestReplyTooLongDefers(t *testing.T) {
	flood := strings.Repeat("250-"+strings.Repeat("x", 500)+"\r\n", 2000) + "250 end"
	for name, c := range map[string]struct {
		mode string
		set  func(f *fake)
	}{
		"EHLO before STARTTLS": {smtpc.StartTLSOpportunistic, func(f *fake) { f.EHLO = []string{flood + "\r\n"} }},
		"EHLO":                 {smtpc.StartTLSNone, func(f *fake) { f.EHLO = []string{flood + "\r\n"} }},
		"RCPT":                 {smtpc.StartTLSNone, func(f *fake) { f.Rcpt = func(string) string { return flood } }},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t)
			c.set(f)
			q := fakeQueue(t, f, smtpc.Options{StartTLS: c.mode})
			var log lockedBuf
			q.Log = zerolog.New(&log)
			putN(t, q, 1, "alice@l")
			runOnce(t, q)
			wantFolders(t, q, 0, 1, 0)
			if got := log.String(); !strings.Contains(got, `"event":4025`) || !strings.Contains(got, "server reply too long") {
				t.Fatalf("no event 4025 in the log:\n%s", got)
			}
		})
	}
}
