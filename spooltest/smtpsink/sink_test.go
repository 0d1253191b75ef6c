package smtpsink

import (
	"crypto/tls"
	"net/smtp"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"example.org/popspool/spooltest/testcert"
)

func TestRecordsWhatItAccepts(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetRcptFault(func(rcpt string) *gosmtp.SMTPError {
		if rcpt == "full@l" {
			return &gosmtp.SMTPError{Code: 452, EnhancedCode: gosmtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
		}
		return nil
	})
	long := strings.Repeat("x", 5000)
	body := "Subject: t\r\n\r\n..dot\r\n" + long + "\r\n"
	if err := smtp.SendMail(s.Addr, nil, "a@l", []string{"b@l"}, []byte(body)); err != nil {
		t.Fatal(err)
	}
	err = smtp.SendMail(s.Addr, nil, "a@l", []string{"full@l"}, []byte(body))
	if err == nil || !strings.Contains(err.Error(), "452") {
		t.Fatalf("want 452, got %v", err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || string(msgs[0].Data) != body || msgs[0].Rcpts[0] != "b@l" {
		t.Fatalf("got %q", msgs)
	}
	if _, refused := s.Stats(); refused != 1 {
		t.Fatalf("refused %d", refused)
	}
}

func TestDSNSinkRecordsRcptLines(t *testing.T) {
	s, err := StartDSN()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := gosmtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("DSN"); !ok {
		t.Fatal("DSN not offered")
	}
	if err := c.Mail("a@l", nil); err != nil {
		t.Fatal(err)
	}
	opts := &gosmtp.RcptOptions{OriginalRecipientType: gosmtp.DSNAddressTypeRFC822, OriginalRecipient: "b+x@isp.example"}
	if err := c.Rcpt("b@l", opts); err != nil {
		t.Fatal(err)
	}
	if got := s.RcptLines(); len(got) != 1 || got[0] != "RCPT TO:<b@l> ORCPT=RFC822;b+2Bx@isp.example" {
		t.Fatalf("RCPT lines %q", got)
	}
}

// TestStartTLS: a client that trusts only the test certificate upgrades
// with STARTTLS and delivers; the message counts as sent over TLS.
func TestStartTLS(t *testing.T) {
	cert, err := testcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := StartTLS(cert.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered")
	}
	if err := c.StartTLS(&tls.Config{RootCAs: cert.Pool(), ServerName: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	body := "Subject: tls\r\n\r\nsecret\r\n"
	if err := c.Mail("a@l"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@l"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(body))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	if msgs := s.Messages(); len(msgs) != 1 || string(msgs[0].Data) != body || s.TLSMessages() != 1 {
		t.Fatalf("got %q, %d over TLS", msgs, s.TLSMessages())
	}
}

// TestDataFaultDropsTheReply: the message is recorded, the client gets no
// reply, and the next message goes through.
func TestDataFaultDropsTheReply(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	armed := true
	s.SetDataFault(func() bool { a := armed; armed = false; return a })
	body := "Subject: t\r\n\r\nbody\r\n"
	if err := smtp.SendMail(s.Addr, nil, "a@l", []string{"b@l"}, []byte(body)); err == nil || strings.Contains(err.Error(), "250") {
		t.Fatalf("the dropped reply reached the client: %v", err)
	}
	if err := smtp.SendMail(s.Addr, nil, "a@l", []string{"b@l"}, []byte(body)); err != nil {
		t.Fatal(err)
	}
	if s.Count() != 2 || s.Dropped() != 1 {
		t.Fatalf("count %d dropped %d", s.Count(), s.Dropped())
	}
}
