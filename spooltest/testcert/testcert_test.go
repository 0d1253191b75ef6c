package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestHandshakeWithTheCAFile: a client trusting only cert.pem completes
// a verified handshake with a server presenting it, by IP and by name.
func TestHandshakeWithTheCAFile(t *testing.T) {
	c, err := Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(c.KeyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	b, err := os.ReadFile(c.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if blk, _ := pem.Decode(b); blk == nil || !pool.AppendCertsFromPEM(b) {
		t.Fatal("cert.pem holds no certificate")
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", c.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			s, err := ln.Accept()
			if err != nil {
				return
			}
			s.Write([]byte("hello"))
			s.Close()
		}
	}()
	for _, name := range []string{"127.0.0.1", "localhost"} {
		d := &net.Dialer{Timeout: 5 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := io.ReadAll(conn)
		conn.Close()
		if string(got) != "hello" {
			t.Fatalf("%s: got %q %v", name, got, err)
		}
	}
	if _, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "127.0.0.1"}); err == nil {
		t.Fatal("a client without the CA file verified the certificate")
	}
}
