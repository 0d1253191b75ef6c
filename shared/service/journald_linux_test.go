package service

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Under systemd each log line becomes a native journal entry: the JSON
// line as MESSAGE, the level as PRIORITY, the daemon as SYSLOG_IDENTIFIER
// and each field as POPSPOOL_<KEY>, so `journalctl POPSPOOL_EVENT=2005`
// finds an event. Without JOURNAL_STREAM naming stderr, nothing changes.
func TestJournaldNativeEntries(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "socket")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	old := journalSocket
	journalSocket = sock
	defer func() { journalSocket = old }()
	stderr, _ := os.Create(filepath.Join(dir, "stderr"))
	defer stderr.Close()

	t.Setenv("JOURNAL_STREAM", "")
	if journald(stderr) != nil {
		t.Fatal("journal used without JOURNAL_STREAM")
	}
	t.Setenv("JOURNAL_STREAM", "1:2")
	if journald(stderr) != nil {
		t.Fatal("journal used when JOURNAL_STREAM names another stream")
	}
	var st syscall.Stat_t
	syscall.Fstat(int(stderr.Fd()), &st)
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	w := journald(stderr)
	if w == nil {
		t.Fatal("no journal writer")
	}
	line := `{"level":"error","daemon":"fetchd","event":2005,"account":"shop","error":"-ERR [AUTH] no\nsecond","ok":false,"time":"2026-12-07T10:00:00Z","message":"login refused"}` + "\n"
	if _, err := w.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	n, err := ln.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	got := string(buf[:n])
	for _, want := range []string{
		"MESSAGE=" + strings.TrimSuffix(line, "\n") + "\n", "PRIORITY=3\n", "SYSLOG_IDENTIFIER=fetchd\n",
		"POPSPOOL_EVENT=2005\n", "POPSPOOL_ACCOUNT=shop\n", "POPSPOOL_OK=false\n", "POPSPOOL_ERROR\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in the entry:\n%q", want, got)
		}
	}
	if strings.Contains(got, "POPSPOOL_TIME") || strings.Contains(got, "POPSPOOL_LEVEL") {
		t.Errorf("time or level as fields: %q", got)
	}
	// A line too big for a datagram goes to stderr instead.
	big := `{"level":"info","message":"` + strings.Repeat("x", maxDatagram) + `"}` + "\n"
	w.Write([]byte(big))
	if fi, _ := stderr.Stat(); fi.Size() != int64(len(big)) {
		t.Fatalf("big line: stderr holds %d bytes, want %d", fi.Size(), len(big))
	}
}
