package check

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSMTP is an in-process SMTP server for the faults a real Postfix
// will not readily produce. Replies not given take the happy default.
type fakeSMTP struct {
	greeting string            // default "220 fake.test ESMTP"
	ehlo     string            // reply to EHLO/LHLO instead of the extension list
	exts     []string          // EHLO extensions
	replies  map[string]string // verb ("MAIL", "RCPT", "AUTH", "STARTTLS", ...) -> reply
	cert     *tls.Certificate  // for STARTTLS

	ln   net.Listener
	mu   sync.Mutex
	cmds []string
	wg   sync.WaitGroup
}

func (f *fakeSMTP) start(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.ln = ln
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return ln.Addr().String()
}

func (f *fakeSMTP) accept() {
	defer f.wg.Done()
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer conn.Close()
			f.serve(conn)
		}()
	}
}

// commands returns the command lines received so far.
func (f *fakeSMTP) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

func (f *fakeSMTP) serve(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(conn)
	say := func(s string) bool { _, err := conn.Write([]byte(s + "\r\n")); return err == nil }
	if !say(or(f.greeting, "220 fake.test ESMTP")) {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		f.mu.Lock()
		f.cmds = append(f.cmds, line)
		f.mu.Unlock()
		verb, _, _ := strings.Cut(strings.ToUpper(line), " ")
		switch verb {
		case "EHLO", "LHLO":
			say(f.hello())
		case "STARTTLS":
			if rep, ok := f.replies[verb]; ok {
				say(rep)
				continue
			}
			say("220 2.0.0 Ready to start TLS")
			tc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{*f.cert}})
			if tc.Handshake() != nil {
				return
			}
			conn, r = tc, bufio.NewReader(tc)
		case "QUIT":
			say("221 2.0.0 Bye")
			return
		case "DATA":
			say("554 5.5.1 this fake never takes DATA")
		default:
			say(f.reply(verb))
		}
	}
}

func (f *fakeSMTP) hello() string {
	if f.ehlo != "" {
		return f.ehlo
	}
	lines := append([]string{"fake.test"}, f.exts...)
	var b strings.Builder
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		b.WriteString("250" + sep + l)
		if sep == "-" {
			b.WriteString("\r\n")
		}
	}
	return b.String()
}

func (f *fakeSMTP) reply(verb string) string {
	if rep, ok := f.replies[verb]; ok {
		return rep
	}
	switch verb {
	case "MAIL", "RCPT", "RSET", "NOOP":
		return "250 2.0.0 Ok"
	case "AUTH":
		return "235 2.7.0 Authentication successful"
	}
	return "502 5.5.2 Error: command not recognized"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// selfSigned makes a certificate for 127.0.0.1 that is its own CA, and
// writes it as PEM into dir; it returns the certificate and the file.
func selfSigned(t *testing.T, dir string) (*tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "fake.test", Organization: []string{"popspool check test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

// keyPEM is the certificate's private key in PEM (PKCS #8).
func keyPEM(t *testing.T, cert *tls.Certificate) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
