package pop3srv

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// client is a strict POP3 client for the tests: lines end at CRLF only.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, addr net.Addr) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t}
	c.use(conn)
	if g := c.status(); !strings.HasPrefix(g, "+OK popspool test server ready <") {
		t.Fatalf("greeting = %q", g)
	}
	return c
}

func (c *client) use(conn net.Conn) {
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		c.t.Fatalf("deadline: %v", err)
	}
	c.conn, c.r = conn, bufio.NewReader(conn)
}

func (c *client) send(lines ...string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(strings.Join(lines, "\r\n") + "\r\n")); err != nil {
		c.t.Fatalf("write %q: %v", lines, err)
	}
}

// line reads one CRLF-terminated line, CRLF included; bare LFs stay inside.
func (c *client) line() ([]byte, error) {
	var line []byte
	for !bytes.HasSuffix(line, []byte("\r\n")) {
		b, err := c.r.ReadBytes('\n')
		line = append(line, b...)
		if err != nil {
			return line, err
		}
	}
	return line, nil
}

func (c *client) status() string {
	c.t.Helper()
	b, err := c.line()
	if err != nil {
		c.t.Fatalf("read status: %v (got %q)", err, b)
	}
	return strings.TrimSuffix(string(b), "\r\n")
}

// cmd sends one command and returns its status line.
func (c *client) cmd(line string) string {
	c.t.Helper()
	c.send(line)
	return c.status()
}

func (c *client) expect(line, prefix string) string {
	c.t.Helper()
	got := c.cmd(line)
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("%s: got %q, want prefix %q", line, got, prefix)
	}
	return got
}

func (c *client) login() {
	c.t.Helper()
	c.expect("USER alice", "+OK")
	c.expect("PASS secret", "+OK")
}

// body reads the rest of a multi-line reply and un-stuffs it.
func (c *client) body() []byte {
	c.t.Helper()
	b, err := c.readBody()
	if err != nil {
		c.t.Fatalf("read body: %v", err)
	}
	return b
}

func (c *client) readBody() ([]byte, error) {
	var out []byte
	for {
		l, err := c.line()
		if err != nil {
			return append(out, l...), err
		}
		if string(l) == ".\r\n" {
			return out, nil
		}
		out = append(out, unstuff(l)...)
	}
}

// unstuff undoes RFC 1939 §3 byte-stuffing of one line.
func unstuff(line []byte) []byte {
	if len(line) > 0 && line[0] == '.' {
		return line[1:]
	}
	return line
}

func (c *client) listing(line string) []string {
	c.t.Helper()
	c.expect(line, "+OK")
	return strings.Split(strings.TrimSuffix(string(c.body()), "\r\n"), "\r\n")
}

// startServer writes files (name → content) into a temp dir and serves it.
func startServer(t *testing.T, files map[string]string, opt func(*Server)) (*Server, net.Addr) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := &Server{Dir: dir, User: "alice", Pass: "secret", Logf: t.Logf}
	if opt != nil {
		opt(s)
	}
	addr, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s, addr
}

func exists(t *testing.T, s *Server, name string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(s.Dir, name))
	return err == nil
}

// selfSigned makes a server config and a client config that trusts it.
func selfSigned(t *testing.T) (*tls.Config, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	srv := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return srv, &tls.Config{RootCAs: pool, ServerName: "localhost"}
}
