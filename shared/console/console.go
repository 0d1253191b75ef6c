// Package console is the optional web page that stands in for the
// Connector Manager: the accounts, the folders, the queue, one message's
// story, and buttons for Retrieve Now, requeue, hold, release and delete.
//
// It reads the spool and the status files, and acts through admin.Actions
// (the same renames and control files as the admin commands, each one
// recorded in status/actions.log), so the daemons still talk only through
// folders. It listens on loopback (or a Unix socket) unless told
// otherwise, asks for a token kept in a file, checks a per-session token
// and the Origin on every change, and shows message data only through
// html/template's escaping: headers are written by whoever sent the mail.
package console

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
)

// Options are how the console is reached.
type Options struct {
	Listen      string // host:port, or unix:/path for a Unix socket
	TokenFile   string // its first line is the token
	AllowRemote bool   // listen on an address that is not loopback
}

// DefaultListen is where the console listens unless told otherwise.
const DefaultListen = "127.0.0.1:8025"

// Serve runs the console until ctx ends.
func Serve(ctx context.Context, cfg *config.Config, opt Options, log zerolog.Logger) error {
	ln, h, err := start(cfg, opt, log)
	if err != nil {
		event.Emit(&log, event.ConsoleFailed).Err(err).Msg("console page could not start")
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	event.Emit(&log, event.ConsoleOn).Str("addr", ln.Addr().String()).Msg("console page listening")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

func start(cfg *config.Config, opt Options, log zerolog.Logger) (net.Listener, http.Handler, error) {
	h, err := newServer(cfg, opt.TokenFile, log)
	if err != nil {
		return nil, nil, err
	}
	if opt.Listen == "" {
		opt.Listen = DefaultListen
	}
	if path, ok := strings.CutPrefix(opt.Listen, "unix:"); ok {
		os.Remove(path) // a socket left by a console that died
		ln, err := net.Listen("unix", path)
		if err == nil {
			err = os.Chmod(path, 0o600)
		}
		return ln, h, err
	}
	if err := checkLoopback(opt.Listen, opt.AllowRemote); err != nil {
		return nil, nil, err
	}
	h.loopbackHost = !opt.AllowRemote
	if opt.AllowRemote {
		log.Warn().Str("addr", opt.Listen).Msg("console listens beyond loopback (-allow-remote): anyone who can reach it may try tokens, and the traffic is not encrypted; prefer ssh -L")
	}
	ln, err := net.Listen("tcp", opt.Listen)
	return ln, h, err
}

// checkLoopback refuses an address that is not on loopback, unless allowed.
func checkLoopback(addr string, allow bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("console -listen %q: %w", addr, err)
	}
	if allow {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("console -listen %q is not a loopback address: give -allow-remote to listen there (or reach it with ssh -L)", addr)
	}
	return nil
}

// readToken returns the first line of the token file, refusing a file
// that is missing, empty, or readable by group or others.
func readToken(path string) (string, error) {
	if path == "" {
		return "", errors.New("console: no token file")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("console token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("console token file: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("console token file %s is readable by group or others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("console token file %s is empty", path)
	}
	if line = strings.TrimSpace(line); line == "" {
		return "", fmt.Errorf("console token file %s has an empty first line", path)
	}
	return line, nil
}

// tokenMatches compares in constant time; hashing first hides the
// token's length too.
func tokenMatches(given, want string) bool {
	a, b := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
