package smtpc

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Tests against go-smtp's own server, in process.

// testBody: CRLF lines, 8-bit bytes, lines starting with "." and a lone
// "." line, which dot-stuffing must carry through unchanged.
const testBody = "From: a@example.org\r\nTo: b@example.org\r\nSubject: test\r\n\r\n" +
	"caf\xc3\xa9 and a raw \xff byte\r\n.leading dot\r\n.\r\n..\r\nlast line\r\n"

type message struct {
	from string
	to   []string
	data []byte
	tls  bool
	user string
}

type backend struct {
	mu    sync.Mutex
	msgs  []message
	mails int
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{b: b, conn: c}, nil
}

func (b *backend) snapshot() ([]message, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]message(nil), b.msgs...), b.mails
}

type session struct {
	b    *backend
	conn *smtp.Conn
	from string
	to   []string
	user string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.b.mu.Lock()
	s.b.mails++
	s.b.mu.Unlock()
	s.from = from
	return nil
}

// Rcpt scripts refusals by local part: reject* 550, full* 452.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	switch {
	case strings.HasPrefix(to, "reject"):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	case strings.HasPrefix(to, "full"):
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.msgs = append(s.b.msgs, message{s.from, s.to, data, isTLS, s.user})
	return nil
}

// LMTPData gives quota* recipients 452 after DATA (RFC 2033 §4.2).
func (s *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	if err := s.Data(r); err != nil {
		return err
	}
	for _, to := range s.to {
		var err error
		if strings.HasPrefix(to, "quota") {
			err = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "over quota"}
		}
		status.SetStatus(to, err)
	}
	return nil
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "deliverd" || pass != "secret" {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}), nil
}

// startServer runs go-smtp's server on 127.0.0.1:0.
func startServer(t *testing.T, setup func(*smtp.Server)) (*backend, Target) {
	t.Helper()
	b := &backend{}
	srv := smtp.NewServer(b)
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	if setup != nil {
		setup(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	scheme := "smtp"
	if srv.LMTP {
		scheme = "lmtp"
	}
	return b, Target{Scheme: scheme, Addr: ln.Addr().String()}
}

var quick = Timeouts{Connect: 5 * time.Second, Greeting: 5 * time.Second, Command: 5 * time.Second,
	Mail: 5 * time.Second, Rcpt: 5 * time.Second, DataInit: 5 * time.Second,
	DataBlock: 5 * time.Second, FinalDot: 5 * time.Second}

func dial(t *testing.T, tg Target, o Options) *Conn {
	t.Helper()
	if o.Timeouts == (Timeouts{}) {
		o.Timeouts = quick
	}
	c, err := Dial(context.Background(), tg, o)
	if err != nil {
		t.Fatalf("Dial %v: %v", tg, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *Conn, from string, rcpts []string, body string) Result {
	t.Helper()
	res, err := c.Send(context.Background(), from, rcpts, strings.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	return res
}

// wantStatus checks one recipient's verdict: code, enhanced code, class.
func wantStatus(t *testing.T, s Status, code int, enh string) {
	t.Helper()
	if s.Code != code || s.Enhanced != enh {
		t.Errorf("%s: got %d %q (%q), want %d %q", s.Rcpt, s.Code, s.Enhanced, s.Msg, code, enh)
	}
	if s.OK != (code/100 == 2) || s.Permanent != (code/100 == 5) || s.Temporary != (code/100 == 4) {
		t.Errorf("%s: OK/Temporary/Permanent = %v/%v/%v for %d", s.Rcpt, s.OK, s.Temporary, s.Permanent, code)
	}
}

func TestHappyPathByteIdentical(t *testing.T) {
	b, tg := startServer(t, nil)
	c := dial(t, tg, Options{StartTLS: StartTLSNone})
	res := send(t, c, "a@example.org", []string{"b@example.org"}, testBody)
	wantStatus(t, res.Rcpts[0], 250, "2.0.0")
	msgs, _ := b.snapshot()
	if len(msgs) != 1 || !bytes.Equal(msgs[0].data, []byte(testBody)) {
		t.Fatalf("server got %d messages; body %q, want %q", len(msgs), msgs[0].data, testBody)
	}
	if c.Broken() {
		t.Error("connection broken after a clean send")
	}
}

func TestReuseTwoMessages(t *testing.T) {
	b, tg := startServer(t, nil)
	c := dial(t, tg, Options{})
	send(t, c, "a@example.org", []string{"one@example.org"}, "Subject: 1\r\n\r\none\r\n")
	if err := c.Reset(); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	res := send(t, c, "a@example.org", []string{"two@example.org"}, "Subject: 2\r\n\r\ntwo\r\n")
	wantStatus(t, res.Rcpts[0], 250, "2.0.0")
	msgs, _ := b.snapshot()
	if len(msgs) != 2 || msgs[1].to[0] != "two@example.org" || string(msgs[1].data) != "Subject: 2\r\n\r\ntwo\r\n" {
		t.Fatalf("server got %+v", msgs)
	}
}

func TestPartialRecipients(t *testing.T) {
	b, tg := startServer(t, nil)
	c := dial(t, tg, Options{StartTLS: StartTLSNone})
	rcpts := []string{"reject@example.org", "full@example.org", "ok@example.org", "ok@example.org"}
	res := send(t, c, "a@example.org", rcpts, testBody)
	wantStatus(t, res.Rcpts[0], 550, "5.1.1")
	wantStatus(t, res.Rcpts[1], 452, "4.2.2")
	wantStatus(t, res.Rcpts[2], 250, "2.0.0")
	wantStatus(t, res.Rcpts[3], 250, "2.0.0") // duplicate: one RCPT, same verdict
	msgs, _ := b.snapshot()
	if len(msgs) != 1 || len(msgs[0].to) != 1 || msgs[0].to[0] != "ok@example.org" {
		t.Fatalf("server got %+v", msgs)
	}
}

func TestAllRecipientsRefusedThenReuse(t *testing.T) {
	b, tg := startServer(t, nil)
	c := dial(t, tg, Options{StartTLS: StartTLSNone})
	res := send(t, c, "a@example.org", []string{"reject@example.org"}, testBody)
	wantStatus(t, res.Rcpts[0], 550, "5.1.1")
	res = send(t, c, "a@example.org", []string{"ok@example.org"}, testBody)
	wantStatus(t, res.Rcpts[0], 250, "2.0.0")
	if msgs, _ := b.snapshot(); len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
}

func TestLMTPPerRecipient(t *testing.T) {
	b, tg := startServer(t, func(s *smtp.Server) { s.LMTP = true })
	c := dial(t, tg, Options{})
	for i := 0; i < 2; i++ { // twice: go-smtp#308 hung on the second message
		res := send(t, c, "a@example.org", []string{"ok@example.org", "quota@example.org"}, testBody)
		wantStatus(t, res.Rcpts[0], 250, "2.0.0")
		wantStatus(t, res.Rcpts[1], 452, "4.2.2")
		if err := c.Reset(); err != nil {
			t.Fatalf("Reset: %v", err)
		}
	}
	if msgs, _ := b.snapshot(); len(msgs) != 2 || !bytes.Equal(msgs[1].data, []byte(testBody)) {
		t.Fatalf("server got %+v", msgs)
	}
}

func TestSizeLimitNoData(t *testing.T) {
	b, tg := startServer(t, func(s *smtp.Server) { s.MaxMessageBytes = 100 })
	c := dial(t, tg, Options{})
	res := send(t, c, "a@example.org", []string{"x@example.org", "y@example.org"}, strings.Repeat("x", 200))
	for _, s := range res.Rcpts {
		wantStatus(t, s, 552, "5.3.4")
	}
	msgs, mails := b.snapshot()
	if len(msgs) != 0 || mails != 0 {
		t.Fatalf("server saw %d MAIL and %d messages, want none", mails, len(msgs))
	}
	res = send(t, c, "a@example.org", []string{"x@example.org"}, "small\r\n")
	wantStatus(t, res.Rcpts[0], 250, "2.0.0")
}

func TestSMTPUTF8(t *testing.T) {
	b, tg := startServer(t, func(s *smtp.Server) { s.EnableSMTPUTF8 = true })
	c := dial(t, tg, Options{})
	res := send(t, c, "jörg@example.org", []string{"zoë@example.org"}, testBody)
	wantStatus(t, res.Rcpts[0], 250, "2.0.0")
	b2, tg2 := startServer(t, nil)
	c2 := dial(t, tg2, Options{})
	res = send(t, c2, "jörg@example.org", []string{"plain@example.org"}, testBody)
	wantStatus(t, res.Rcpts[0], 553, "5.6.7")
	if msgs, _ := b.snapshot(); len(msgs) != 1 {
		t.Errorf("SMTPUTF8 server got %d messages", len(msgs))
	}
	if _, mails := b2.snapshot(); mails != 0 {
		t.Errorf("server without SMTPUTF8 saw %d MAIL", mails)
	}
}

func TestStartTLSOpportunisticAndAuth(t *testing.T) {
	cert, pool := selfSigned(t)
	b, tg := startServer(t, func(s *smtp.Server) { s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}} })
	c := dial(t, tg, Options{TLSConfig: &tls.Config{RootCAs: pool}, Username: "deliverd", Password: "secret"})
	if !c.TLS() {
		t.Fatal("STARTTLS offered but not used")
	}
	send(t, c, "a@example.org", []string{"b@example.org"}, testBody)
	msgs, _ := b.snapshot()
	if len(msgs) != 1 || !msgs[0].tls || msgs[0].user != "deliverd" || !bytes.Equal(msgs[0].data, []byte(testBody)) {
		t.Fatalf("server got %+v", msgs)
	}
	// Verification is on by default: an unknown CA fails the session.
	_, err := Dial(context.Background(), tg, Options{Timeouts: quick})
	var e *Error
	if !errors.As(err, &e) || e.Op != "tls" {
		t.Fatalf("Dial with unknown CA: %v, want a tls *Error", err)
	}
	// none: no STARTTLS even though it is offered.
	if c := dial(t, tg, Options{StartTLS: StartTLSNone}); c.TLS() {
		t.Error("StartTLS none but TLS is on")
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
