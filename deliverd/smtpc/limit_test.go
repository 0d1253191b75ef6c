package smtpc

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flood writes prefix, then repeat until total bytes are out or the
// peer is gone, and counts what the peer took.
func flood(w io.Writer, prefix, repeat string, total int64, taken *atomic.Int64) {
	n, err := io.WriteString(w, prefix)
	taken.Add(int64(n))
	for b := []byte(repeat); err == nil && taken.Load() < total; {
		n, err = w.Write(b)
		taken.Add(int64(n))
	}
}

// TestWireBoundsReplies reads hostile replies through the wire the way
// smtpc and go-smtp do, over an unbuffered pipe: the bytes the server
// gets rid of are the bytes the wire read, so the test sees that the wire
// stops reading near its limit instead of buffering the reply.
func TestWireBoundsReplies(t *testing.T) {
	for name, c := range map[string]struct{ prefix, repeat, why string }{
		"one endless line": {"250-", "x", "a line longer"},
		"endless lines":    {"", "250-ok\r\n", "more than 100 lines"},
		"long lines":       {"", "250-" + strings.Repeat("y", 1500) + "\r\n", "more than 32768 bytes"},
		"endless, then LF": {"220 ", strings.Repeat("z", 4000) + "\n", "a line longer"},
		"bare code lines":  {"", "250-\r\n", "more than 100 lines"},
	} {
		t.Run(name, func(t *testing.T) {
			client, server := net.Pipe()
			defer server.Close()
			w := newWire(client, time.Second)
			var taken atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				flood(server, c.prefix, c.repeat, 150<<20, &taken)
			}()
			_, _, err := textproto.NewReader(bufio.NewReader(w)).ReadResponse(250)
			if !errors.Is(err, ErrReplyTooLong) || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("got %v, want %v (%s)", err, ErrReplyTooLong, c.why)
			}
			<-done // the wire closed the pipe: the flood ends
			if max := int64(maxReply + maxLine + len(w.rbuf)); taken.Load() > max {
				t.Errorf("wire read %d bytes, want at most %d", taken.Load(), max)
			}
			if !w.broken.Load() {
				t.Error("connection not marked broken")
			}
		})
	}
}

// TestWireAcceptsWithinLimits: a line of maxLine bytes and a reply of
// maxReplyLines lines pass, and the count starts again for each reply.
func TestWireAcceptsWithinLimits(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	long := "250 " + strings.Repeat("a", maxLine-6) + "\r\n"
	many := strings.Repeat("250-x\r\n", maxReplyLines-1) + "250 x\r\n"
	go func() {
		defer server.Close()
		_, _ = io.WriteString(server, long+many+many)
	}()
	r := textproto.NewReader(bufio.NewReader(newWire(client, time.Second)))
	for i, want := range []int{len(long) - 6, 2*maxReplyLines - 1, 2*maxReplyLines - 1} {
		_, msg, err := r.ReadResponse(250)
		if err != nil || len(msg) != want {
			t.Fatalf("reply %d: %d bytes, %v; want %d bytes", i, len(msg), err, want)
		}
	}
}

// floodServer greets, reads the EHLO line and answers it with a flood of
// up to 150 MB.
func floodServer(t *testing.T, repeat string) Target {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(conn, "220 flood.test ESMTP\r\n"); err != nil {
			return
		}
		if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
			return
		}
		var taken atomic.Int64
		flood(conn, "250-flood.test\r\n", repeat, 150<<20, &taken)
	}()
	return Target{Scheme: "smtp", Addr: ln.Addr().String()}
}

// TestDialFloodedEHLO: a 150 MB EHLO reply ends Dial promptly with
// ErrReplyTooLong, both when smtpc reads it (before STARTTLS) and when
// go-smtp does.
func TestDialFloodedEHLO(t *testing.T) {
	for _, mode := range []string{StartTLSOpportunistic, StartTLSNone} {
		for name, repeat := range map[string]string{"line": "x", "lines": "250-8BITMIME\r\n"} {
			t.Run(mode+"/"+name, func(t *testing.T) {
				tg := floodServer(t, repeat)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				_, err := Dial(ctx, tg, Options{StartTLS: mode})
				var e *Error
				if !errors.Is(err, ErrReplyTooLong) || !errors.As(err, &e) || e.Op != "EHLO" {
					t.Fatalf("got %v, want an EHLO error wrapping %v", err, ErrReplyTooLong)
				}
				if ctx.Err() != nil {
					t.Fatal("Dial returned only when the test's deadline expired")
				}
			})
		}
	}
}
