// Command pop3serve runs spooltest's POP3 test server (pop3srv) on its own,
// for tests outside Go: scripts/systemd-test.sh points the packaged fetchd
// at it. It serves the *.eml files of -dir (with -samples, the sample
// messages written there first) until SIGTERM, SIGINT or -timeout, then
// prints what it served.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"example.org/popspool/spooltest/pop3srv"
	"example.org/popspool/spooltest/samples"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback; port 0: a free one)")
	dir := flag.String("dir", "", "the mailbox: a folder of *.eml files (required)")
	user := flag.String("user", "test", "the one user name accepted")
	passFile := flag.String("pass-file", "", "file whose first line is the one password accepted (required)")
	withSamples := flag.Bool("samples", false, "write the sample messages into -dir first")
	addrFile := flag.String("addr-file", "", "write the address listened on to this file once listening")
	timeout := flag.Duration("timeout", 10*time.Minute, "stop after this long")
	flag.Parse()
	if err := run(*addr, *dir, *user, *passFile, *addrFile, *withSamples, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "pop3serve:", err)
		os.Exit(1)
	}
}

func run(addr, dir, user, passFile, addrFile string, withSamples bool, timeout time.Duration) error {
	if dir == "" || passFile == "" {
		return errors.New("-dir and -pass-file are required")
	}
	pass, err := readPass(passFile)
	if err != nil {
		return err
	}
	if withSamples {
		names, err := samples.WriteTo(dir)
		if err != nil {
			return fmt.Errorf("writing the samples: %w", err)
		}
		fmt.Printf("wrote %d sample messages into %s\n", len(names), dir)
	}
	srv := &pop3srv.Server{Dir: dir, User: user, Pass: pass, Timeout: time.Minute}
	got, err := srv.Start(addr)
	if err != nil {
		return err
	}
	defer srv.Close()
	if addrFile != "" {
		if err := os.WriteFile(addrFile, []byte(got.String()+"\n"), 0o644); err != nil {
			return fmt.Errorf("writing the address: %w", err)
		}
	}
	fmt.Printf("listening on %s\n", got)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		fmt.Printf("stopping on %s\n", s)
	case <-time.After(timeout):
		fmt.Printf("stopping after %s\n", timeout)
	}
	st := srv.Stats()
	fmt.Printf("sessions %d logins %d retrs %d deleted %d left %d\n", st.Sessions, st.Logins, st.Retrs, st.Deleted, st.Left)
	return nil
}

// readPass returns the first line of the password file.
func readPass(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimRight(line, "\r")
	if line == "" {
		return "", errors.New("password file: the first line is empty")
	}
	return line, nil
}
