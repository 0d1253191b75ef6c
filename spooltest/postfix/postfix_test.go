package postfix

import (
	"bytes"
	"errors"
	"net/smtp"
	"net/textproto"
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
