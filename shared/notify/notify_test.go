package notify

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"example.org/popspool/shared/notify/notifytest"
)

func TestSendReachesSocket(t *testing.T) {
	paths := []string{""}
	if runtime.GOOS == "linux" {
		paths = append(paths, fmt.Sprintf("@popspool-notify-test-%d", os.Getpid()))
	}
	for _, p := range paths {
		s := notifytest.Listen(t, p)
		t.Setenv("NOTIFY_SOCKET", s.Path)
		if err := Send(Ready + "\n" + Status("routing\nfiles")); err != nil {
			t.Fatalf("%s: %v", s.Path, err)
		}
		if got := s.Wait(t, Ready, 2*time.Second); got != "READY=1\nSTATUS=routing files" {
			t.Fatalf("%s: got %q", s.Path, got)
		}
	}
}

func TestNoSocketNoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if Enabled() || Send(Ready) != nil {
		t.Fatal("Send without NOTIFY_SOCKET must do nothing")
	}
	t.Setenv("NOTIFY_SOCKET", "vsock:2:1234")
	if Send(Ready) == nil {
		t.Fatal("a socket kind we cannot speak must be an error")
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	if WatchdogInterval() != 0 {
		t.Fatal("watchdog on without WATCHDOG_USEC")
	}
	t.Setenv("WATCHDOG_USEC", "60000000")
	t.Setenv("WATCHDOG_PID", "")
	if got := WatchdogInterval(); got != 30*time.Second {
		t.Fatalf("interval %v, want half of 60s", got)
	}
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()+1))
	if WatchdogInterval() != 0 {
		t.Fatal("watchdog meant for another process used")
	}
}
