package service

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"syscall"
)

// journalSocket is where journald takes native entries.
var journalSocket = "/run/systemd/journal/socket"

// journald returns a writer that sends each JSON log line to the journal
// as a native entry with fields, when stderr is connected to the journal
// (systemd sets JOURNAL_STREAM to its device and inode); otherwise nil.
// The entry's MESSAGE is the JSON line as before, so `journalctl -o cat`
// and grep work as they did, and its fields are searchable:
// `journalctl POPSPOOL_EVENT=2005`, `journalctl -p warning`.
func journald(stderr *os.File) io.Writer {
	stream := os.Getenv("JOURNAL_STREAM")
	if stream == "" || !sameFile(stderr, stream) {
		return nil
	}
	conn, err := net.Dial("unixgram", journalSocket)
	if err != nil {
		return nil
	}
	return &journalWriter{conn: conn, fallback: stderr}
}

func sameFile(f *os.File, stream string) bool {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return stream == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// journalWriter sends one native entry per line; a line it cannot send
// (too big for a datagram, the socket gone) goes to the fallback.
type journalWriter struct {
	conn     net.Conn
	fallback io.Writer
}

// maxDatagram is kept under the default socket buffer; longer entries go
// to stderr, where journald stores them as a plain line.
const maxDatagram = 128 << 10

func (j *journalWriter) Write(p []byte) (int, error) {
	entry := journalEntry(p)
	if len(entry) <= maxDatagram {
		if _, err := j.conn.Write(entry); err == nil {
			return len(p), nil
		}
	}
	return j.fallback.Write(p)
}

// journalEntry is the native-protocol datagram of one JSON log line:
// MESSAGE (the line), PRIORITY (from level), SYSLOG_IDENTIFIER (daemon)
// and POPSPOOL_<KEY> for each other top-level field.
func journalEntry(line []byte) []byte {
	line = bytes.TrimRight(line, "\n")
	var b bytes.Buffer
	field(&b, "MESSAGE", string(line))
	var m map[string]any
	if json.Unmarshal(line, &m) != nil {
		return b.Bytes()
	}
	if lvl, ok := m["level"].(string); ok {
		field(&b, "PRIORITY", priority(lvl))
	}
	if d, ok := m["daemon"].(string); ok {
		field(&b, "SYSLOG_IDENTIFIER", d)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "level" || k == "message" || k == "time" {
			continue
		}
		var v string
		switch x := m[k].(type) {
		case string:
			v = x
		case float64, bool:
			v = fmt.Sprint(x)
		default:
			continue // objects and lists stay in MESSAGE
		}
		field(&b, "POPSPOOL_"+fieldName(k), v)
	}
	return b.Bytes()
}

// field writes one field; a value with a line end takes the binary form.
func field(b *bytes.Buffer, name, value string) {
	if !strings.ContainsRune(value, '\n') {
		fmt.Fprintf(b, "%s=%s\n", name, value)
		return
	}
	b.WriteString(name + "\n")
	binary.Write(b, binary.LittleEndian, uint64(len(value)))
	b.WriteString(value + "\n")
}

// fieldName makes a log key a journal field name: upper case letters,
// digits and underscores.
func fieldName(k string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, k)
}

// priority maps a zerolog level to syslog's.
func priority(level string) string {
	switch level {
	case "panic":
		return "0"
	case "fatal":
		return "2"
	case "error":
		return "3"
	case "warn":
		return "4"
	case "info":
		return "6"
	}
	return "7"
}
