package postfix

import (
	"bytes"
	"errors"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const msg = "From: a@example.net\r\nTo: alice@popspool.test\r\nSubject: hi\r\n\r\nline\r\n.dot\r\n"

func send(t *testing.T, s *Server, to ...string) error {
	t.Helper()
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Mail("a@example.net"); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	w.Write([]byte(msg))
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func TestDeliversRejectsAndRestarts(t *testing.T) {
	s := Start(t, Options{})
	if err := send(t, s, s.Address("alice")); err != nil {
		t.Fatal(err)
	}
	var te *textproto.Error
	err := send(t, s, "nobody@popspool.test")
	if !errors.As(err, &te) || te.Code != 550 || !strings.HasPrefix(te.Msg, "5.1.1") {
		t.Fatalf("unknown recipient: %v, want 550 5.1.1", err)
	}
	if err := send(t, s, "someone@example.com"); err == nil {
		t.Fatal("relaying to another domain accepted")
	}
	all := s.WaitCount(t, 1, 30*time.Second)
	got := all[s.Address("alice")]
	if len(got) != 1 || !bytes.Equal(Body(got[0].Data), []byte(msg)) {
		t.Fatalf("Maildirs: %s body %q", String(all), Body(got[0].Data))
	}
	if Header(got[0].Data, "Delivered-To") != s.Address("alice") {
		t.Fatalf("Delivered-To %q", Header(got[0].Data, "Delivered-To"))
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := send(t, s, s.Address("bob")); err == nil {
		t.Fatal("stopped instance still answers")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := send(t, s, s.Address("bob")); err != nil {
		t.Fatal(err)
	}
	s.WaitCount(t, 2, 30*time.Second)
}

// A Maildir copy as virtual(8) stores it, with a long queue id.
const stored = "Return-Path: <a@example.net>\nX-Original-To: alice@popspool.test\nDelivered-To: alice@popspool.test\n" +
	"Received: from gw.popspool.test (unknown [127.0.0.1])\n\tby mx.popspool.test (Postfix) with ESMTP id 4dQ2Fz3Q1bz9vBk\n" +
	"\tfor <alice@popspool.test>; Mon, 23 Nov 2026 00:58:31 +0000 (UTC)\n" +
	"Received: from pop.example.net by gw.popspool.test with ESMTP id 99; Mon, 23 Nov 2026 00:58:30 +0000\n" +
	"X-Test-Seq: 337\n\nbody\n"

func TestHeaderAndQueueID(t *testing.T) {
	if got := QueueID([]byte(stored)); got != "4dQ2Fz3Q1bz9vBk" {
		t.Errorf("QueueID = %q", got)
	}
	if got := Header([]byte(stored), "X-Test-Seq"); got != "337" {
		t.Errorf("X-Test-Seq = %q", got)
	}
	if got := Header([]byte(stored), "received"); !strings.HasSuffix(got, "for <alice@popspool.test>; Mon, 23 Nov 2026 00:58:31 +0000 (UTC)") {
		t.Errorf("folded Received = %q", got)
	}
	if got := QueueID([]byte("Subject: no trace\n\nx\n")); got != "" {
		t.Errorf("QueueID without Received = %q", got)
	}
}

// What a Stop under load left in queue/incoming must not keep WaitCount
// waiting: a temporary file of a killed cleanup(8), never completed.
func TestQueuedIgnoresAbandonedFiles(t *testing.T) {
	s := &Server{Dir: t.TempDir()}
	in := filepath.Join(s.Dir, "queue", "incoming")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	for name, mode := range map[string]os.FileMode{
		"514530.13021":    0o600, // abandoned: unfinished, unchanged for a minute
		"4dQ2Fz3Q1bz9vBk": 0o700, // complete: qmgr will deliver it
		"4dQ2Fz3Q1cz9vBm": 0o600, // unfinished, old: abandoned too
	} {
		p := filepath.Join(in, name)
		if err := os.WriteFile(p, []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		os.Chtimes(p, old, old)
	}
	if n := s.Queued(); n != 1 {
		t.Fatalf("Queued = %d, want 1 (the complete file)", n)
	}
	// A file being written right now counts.
	if err := os.WriteFile(filepath.Join(in, "601234.777"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n := s.Queued(); n != 2 {
		t.Fatalf("Queued = %d, want 2", n)
	}
}
