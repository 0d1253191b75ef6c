package dovecot

import "example.org/popspool/spooltest/testcert"

// writeCert writes the test certificate (cert.pem) and its key (key.pem,
// 0600) into dir and returns the certificate's path, which clients use as
// their trust root (spooltest/testcert).
func writeCert(dir string) (string, error) {
	c, err := testcert.Write(dir)
	if err != nil {
		return "", err
	}
	return c.CertFile, nil
}
