// Package notify speaks systemd's sd_notify protocol (sd_notify(3)): one
// datagram of newline-separated VAR=value assignments to the unix socket
// named by $NOTIFY_SOCKET. It is written by hand (a socket and a write)
// instead of depending on go-systemd; outside systemd, and on Windows,
// $NOTIFY_SOCKET is unset and every call is a no-op.
package notify

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// The states popspool sends.
const (
	Ready     = "READY=1"
	Stopping  = "STOPPING=1"
	Reloading = "RELOADING=1"
	Watchdog  = "WATCHDOG=1"
)

// Enabled reports whether a service manager listens ($NOTIFY_SOCKET set).
func Enabled() bool { return os.Getenv("NOTIFY_SOCKET") != "" }

// Send sends state (for example "READY=1\nSTATUS=routing") to the service
// manager. It returns nil without doing anything when $NOTIFY_SOCKET is
// unset. A name starting with "@" is an abstract socket (Linux); Go's net
// package maps it to the leading NUL byte the kernel expects.
func Send(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@") {
		return errors.New("NOTIFY_SOCKET " + strconv.Quote(path) + " is not a unix socket path")
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	_, err = conn.Write([]byte(state))
	if cerr := conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// Status returns a STATUS= line: free text systemctl status shows. Line
// breaks would end the assignment, so they become spaces.
func Status(text string) string {
	return "STATUS=" + strings.NewReplacer("\n", " ", "\r", " ").Replace(text)
}

// ReloadingNow returns the RELOADING=1 message with the MONOTONIC_USEC
// systemd wants with it since version 253 (older versions ignore it).
func ReloadingNow() string {
	return Reloading + "\nMONOTONIC_USEC=" + strconv.FormatInt(monotonicUsec(), 10)
}

// WatchdogInterval returns how often to send WATCHDOG=1: half of
// $WATCHDOG_USEC, as sd_watchdog_enabled(3) advises, or 0 when the
// watchdog is off or meant for another process ($WATCHDOG_PID).
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}
