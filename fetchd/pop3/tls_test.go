package pop3

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"
)

// testPKI is a CA made for the test and a server certificate it signed for
// "pop.test" and 127.0.0.1.
type testPKI struct {
	server *tls.Config
	roots  *x509.CertPool
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "popspool test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	must(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	must(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "pop.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"pop.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	must(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return testPKI{server: &tls.Config{Certificates: []tls.Certificate{cert}}, roots: roots}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func tlsOpts(mode TLSMode, roots *x509.CertPool) Options {
	return Options{TLS: mode, Timeout: 5 * time.Second,
		TLSConfig: &tls.Config{ServerName: "pop.test", RootCAs: roots}}
}

const capaSTLS = "+OK\r\nSTLS\r\nUSER\r\n.\r\n"

func TestSTLSWithoutCAFails(t *testing.T) {
	pki := newPKI(t)
	fs := serve(t, greet,
		step{c: "CAPA", s: capaSTLS},
		step{c: "STLS", s: "+OK begin TLS\r\n", then: upgradeTLS(pki.server)},
	)
	_, err := Dial(t.Context(), fs.addr, tlsOpts(TLSStartTLS, x509.NewCertPool()))
	var verr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	if !errors.As(err, &verr) || !errors.As(err, &uerr) {
		t.Fatalf("Dial = %v, want an unknown-authority verification error", err)
	}
}

func TestSTLSWithCA(t *testing.T) {
	pki := newPKI(t)
	fs := serve(t, greet,
		step{c: "CAPA", s: capaSTLS},
		step{c: "STLS", s: "+OK begin TLS\r\n", then: upgradeTLS(pki.server)},
		step{c: "USER bob", s: "+OK\r\n"},
		step{c: "PASS pw", s: "+OK\r\n"},
		step{c: "QUIT", s: "+OK\r\n"},
	)
	c := dial(t, fs, tlsOpts(TLSStartTLS, pki.roots))
	if !c.TLS() {
		t.Fatal("TLS() = false after STLS")
	}
	if err := c.Login("bob", "pw"); err != nil { // no AllowPlaintext: works only over TLS
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Error(err)
	}
}

func TestImplicitTLS(t *testing.T) {
	pki := newPKI(t)
	fs := serve(t, step{then: upgradeTLS(pki.server)}, greet,
		step{c: "QUIT", s: "+OK\r\n"},
	)
	c := dial(t, fs, tlsOpts(TLSImplicit, pki.roots))
	if !c.TLS() || c.Greeting() == "" {
		t.Fatalf("TLS() = %v, Greeting() = %q", c.TLS(), c.Greeting())
	}
	if err := c.Quit(); err != nil {
		t.Error(err)
	}
}

// TestSTLSNeverClear: when STLS is missing, refused or abused, Dial fails
// and nothing more is sent (the fake server fails on any further line, such
// as USER or PASS).
func TestSTLSNeverClear(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  error
	}{
		{"not offered", []step{{c: "CAPA", s: "+OK\r\nUSER\r\n.\r\n"}}, ErrInsecure},
		{"no CAPA", []step{{c: "CAPA", s: "-ERR no\r\n"}}, ErrInsecure},
		{"refused", []step{{c: "CAPA", s: capaSTLS}, {c: "STLS", s: "-ERR [SYS/TEMP] not now\r\n"}}, ErrInsecure},
		{"injection", []step{{c: "CAPA", s: capaSTLS}, {c: "STLS", s: "+OK\r\n+OK injected\r\n"}}, ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := serve(t, append([]step{greet}, tt.steps...)...)
			c, err := Dial(t.Context(), fs.addr, tlsOpts(TLSStartTLS, newPKI(t).roots))
			if !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("Dial = %v, %v; want %v", c, err, tt.want)
			}
		})
	}
}
