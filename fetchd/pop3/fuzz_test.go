package pop3

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"+OK", "-ERR [IN-USE] x", "-ERR [SYS/TEMP]", "-ERR [", "+OK [a]b", "+", "-ERR [A/]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		_, code, text, err := parseStatus(line)
		if err != nil {
			return
		}
		if strings.ContainsAny(text, "\r\n\x00\x1b") {
			t.Errorf("text %q keeps control characters", text)
		}
		if code != "" && !validRespCode([]byte(code)) {
			t.Errorf("invalid code %q accepted", code)
		}
	})
}

func FuzzListingLine(f *testing.F) {
	for _, s := range []string{"1 abc", "2 a/b", "1 12", "0 x", "1  x", "99999999999999999999 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if m, err := parseUIDLine(line, map[int]bool{}, map[string]int{}); err == nil {
			if m.Num < 1 || checkUID(m.UID) != nil {
				t.Errorf("%q accepted as %+v", line, m)
			}
		}
		if m, err := parseScan(line, map[int]bool{}); err == nil && (m.Num < 1 || m.Size < 0) {
			t.Errorf("%q accepted as %+v", line, m)
		}
	})
}

// FuzzClient plays arbitrary server bytes against a whole session: no
// panic, no hang, and whatever UIDL returns is valid.
func FuzzClient(f *testing.F) {
	f.Add([]byte("+OK hi\r\n+OK\r\nPIPELINING\r\n.\r\n+OK\r\n+OK\r\n+OK 2 10\r\n+OK\r\n1 a\r\n2 b/c\r\n.\r\n" +
		"+OK\r\n1 5\r\n.\r\n+OK\r\nab\r\n..c\r\n.\r\n+OK\r\n.\r\n+OK\r\n-ERR [IN-USE] x\r\n+ \r\n+OK\r\n+OK bye\r\n"))
	f.Add([]byte("+OK\r\n-ERR\r\n+OK\r\n+OK\r\n+OK 1\r\n+OK\r\n1 a b\r\n.\r\n+OK\r\n1 -1\r\n.\r\n+OK\r\nab\r\n."))
	f.Fuzz(func(t *testing.T, replies []byte) {
		cc, sc := net.Pipe()
		go func() { _, _ = io.Copy(io.Discard, sc) }()
		go func() { _, _ = sc.Write(replies); _ = sc.Close() }()
		c, err := NewClient(t.Context(), cc, Options{AllowPlaintext: true, Timeout: 5 * time.Second})
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Capabilities()
		_ = c.Login("u", "p")
		_, _, _ = c.Stat()
		uids, err := c.UIDL()
		for _, u := range uids {
			if err == nil && (u.Num < 1 || checkUID(u.UID) != nil) {
				t.Errorf("UIDL returned %+v", u)
			}
		}
		_, _ = c.List()
		_, _ = c.Retr(1, io.Discard)
		_, _ = c.Top(1, 0, io.Discard)
		_ = c.DeleMany([]int{1, 2})
		_ = c.Auth(echoClient{})
		_ = c.Quit() // any error is fine here; only panics and hangs fail
	})
}
