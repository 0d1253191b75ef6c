package pop3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// tracer records trace lines.
type tracer struct {
	mu    sync.Mutex
	lines []string
}

func (tr *tracer) trace(dir byte, line string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.lines = append(tr.lines, string(dir)+" "+line)
}

func (tr *tracer) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.lines, "\n")
}

const capaFull = "+OK\r\nUSER\r\nUIDL\r\nTOP\r\nPIPELINING\r\nRESP-CODES\r\nSASL PLAIN XOAUTH2\r\n" +
	"EXPIRE NEVER\r\nLOGIN-DELAY 900\r\nIMPLEMENTATION fake 1.0\r\n.\r\n"

func TestHappyPath(t *testing.T) {
	msg := nastyMessage()
	header := []byte("Subject: hi\r\n.dot header\r\n\r\n")
	fs := serve(t, greet,
		step{c: "CAPA", s: capaFull},
		step{c: "USER alice", s: "+OK\r\n"},
		step{c: "PASS s3cr3t pw", s: "+OK logged in\r\n"},
		step{c: "STAT", s: "+OK 2 300 extra\r\n"},
		step{c: "UIDL", s: "+OK\r\n1 uid-one\r\n2 uid/two+x=\r\n.\r\n"},
		step{c: "LIST", s: "+OK 2 messages\r\n1 120\r\n2 180 extra\r\n.\r\n"},
		step{c: "RETR 1", s: "+OK 120 octets\r\n" + string(stuff(msg))},
		step{c: "TOP 2 0", s: "+OK\r\n" + string(stuff(header))},
		step{c: "DELE 1", s: "+OK deleted\r\n"},
		step{c: "NOOP", s: "+OK\r\n"},
		step{c: "QUIT", s: "+OK bye\r\n"},
	)
	var tr tracer
	o := clearOpts()
	o.Trace = tr.trace
	c := dial(t, fs, o)
	if !strings.Contains(c.Greeting(), "<1896.697170952@dbc.mtview.ca.us>") {
		t.Errorf("Greeting() = %q", c.Greeting())
	}
	caps, err := c.Capabilities()
	if err != nil {
		t.Fatal(err)
	}
	want := Caps{UIDL: true, TOP: true, Pipelining: true, User: true, RespCodes: true,
		SASL: []string{"PLAIN", "XOAUTH2"}, Expire: "NEVER", LoginDelay: "900", Implementation: "fake 1.0",
		Raw: []string{"USER", "UIDL", "TOP", "PIPELINING", "RESP-CODES", "SASL PLAIN XOAUTH2", "EXPIRE NEVER", "LOGIN-DELAY 900", "IMPLEMENTATION fake 1.0"}}
	if !reflect.DeepEqual(caps, want) {
		t.Errorf("Capabilities() = %+v\nwant %+v", caps, want)
	}
	if err := c.Login("alice", "s3cr3t pw"); err != nil {
		t.Fatal(err)
	}
	count, size, err := c.Stat()
	if err != nil || count != 2 || size != 300 {
		t.Errorf("Stat() = %d, %d, %v; want 2, 300", count, size, err)
	}
	uids, err := c.UIDL()
	if wantU := []MsgUID{{1, "uid-one"}, {2, "uid/two+x="}}; err != nil || !reflect.DeepEqual(uids, wantU) {
		t.Errorf("UIDL() = %v, %v; want %v", uids, err, wantU)
	}
	list, err := c.List()
	if wantL := []MsgInfo{{1, 120}, {2, 180}}; err != nil || !reflect.DeepEqual(list, wantL) {
		t.Errorf("List() = %v, %v; want %v", list, err, wantL)
	}
	var body bytes.Buffer
	n, err := c.Retr(1, &body)
	if err != nil || n != int64(len(terminated(msg))) || !bytes.Equal(body.Bytes(), terminated(msg)) {
		t.Errorf("Retr(1) = %d, %v; body equal: %v", n, err, bytes.Equal(body.Bytes(), terminated(msg)))
	}
	body.Reset()
	if _, err := c.Top(2, 0, &body); err != nil || !bytes.Equal(body.Bytes(), header) {
		t.Errorf("Top(2, 0) = %q, %v; want %q", body.Bytes(), err, header)
	}
	if err := c.Dele(1); err != nil {
		t.Errorf("Dele(1): %v", err)
	}
	if err := c.Noop(); err != nil {
		t.Errorf("Noop(): %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("Quit(): %v", err)
	}
	if err := c.Noop(); !errors.Is(err, ErrClosed) {
		t.Errorf("Noop() after Quit = %v, want ErrClosed", err)
	}
	trace := tr.String()
	if strings.Contains(trace, "s3cr3t") || !strings.Contains(trace, "C PASS ****") {
		t.Errorf("trace leaks or does not mask the password:\n%s", trace)
	}
	if strings.Contains(trace, "leading dot") {
		t.Errorf("trace contains the message body")
	}
}

func TestErrorCodes(t *testing.T) {
	tests := []struct {
		reply, code string
		temp        bool
	}{
		{"-ERR [IN-USE] maildrop locked", "IN-USE", true},
		{"-ERR [LOGIN-DELAY] wait a bit", "LOGIN-DELAY", true},
		{"-ERR [SYS/TEMP] try later", "SYS/TEMP", true},
		{"-ERR [AUTH] wrong password s3cr3t", "AUTH", false},
		{"-ERR [SYS/PERM] account disabled", "SYS/PERM", false},
		{"-ERR [sys/perm/x] sub-level", "sys/perm/x", false},
		{"-ERR no code", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			fs := serve(t, greet,
				step{c: "USER bob", s: "+OK\r\n"},
				step{c: "PASS s3cr3t", s: tt.reply + "\r\n"},
				step{c: "QUIT", s: "+OK\r\n"},
			)
			c := dial(t, fs, clearOpts())
			err := c.Login("bob", "s3cr3t")
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("Login = %v, want *Error", err)
			}
			if perr.Cmd != "PASS" || perr.Code != tt.code || perr.Temporary() != tt.temp {
				t.Errorf("got Cmd %q Code %q Temporary %v; want PASS %q %v", perr.Cmd, perr.Code, perr.Temporary(), tt.code, tt.temp)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error leaks the password: %v", err)
			}
			if err := c.Quit(); err != nil {
				t.Errorf("Quit after -ERR: %v (session should still be usable)", err)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		line       string
		ok         bool
		code, text string
		bad        bool
	}{
		{line: "+OK", ok: true},
		{line: "+OK 2 320", ok: true, text: "2 320"},
		{line: "+ok lower case", ok: true, text: "lower case"},
		{line: "-ERR", ok: false},
		{line: "-ERR [IN-USE] locked", code: "IN-USE", text: "locked"},
		{line: "-ERR [SYS/TEMP]", code: "SYS/TEMP"},
		{line: "-ERR [not a code] x", text: "[not a code] x"},
		{line: "-ERR [] x", text: "[] x"},
		{line: "-ERR [A//B] x", text: "[A//B] x"},
		{line: "-ERR ctl\x1b[31m", text: "ctl?[31m"},
		{line: "+OKAY", bad: true},
		{line: "", bad: true},
		{line: "HELLO", bad: true},
		{line: "+ challenge", bad: true},
	}
	for _, tt := range tests {
		ok, code, text, err := parseStatus([]byte(tt.line))
		if tt.bad {
			if !errors.Is(err, ErrProtocol) {
				t.Errorf("%q: err = %v, want ErrProtocol", tt.line, err)
			}
			continue
		}
		if err != nil || ok != tt.ok || code != tt.code || text != tt.text {
			t.Errorf("%q: got %v %q %q %v; want %v %q %q", tt.line, ok, code, text, err, tt.ok, tt.code, tt.text)
		}
	}
}

func TestHostileReplies(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	tests := []struct {
		name   string
		steps  []step
		call   func(*Client) error
		usable bool // the session survives (a NOOP is scripted after)
	}{
		{"garbage status", []step{{c: "STAT", s: "HELLO\r\n"}}, statErr, false},
		{"bare +OK to STAT", []step{{c: "STAT", s: "+OK\r\n"}}, statErr, false},
		{"negative STAT", []step{{c: "STAT", s: "+OK -1 5\r\n"}}, statErr, false},
		{"over-long status line", []step{{c: "NOOP", s: "+OK " + long + "\r\n"}}, (*Client).Noop, false},
		{"over-long listing line", []step{{c: "LIST", s: "+OK\r\n1 " + long + "\r\n.\r\n"}}, listErr, false},
		{"negative size", []step{{c: "LIST", s: "+OK\r\n1 -5\r\n.\r\n"}, {c: "NOOP", s: "+OK\r\n"}}, listErr, true},
		{"non-numeric size", []step{{c: "LIST", s: "+OK\r\n1 12k\r\n.\r\n"}, {c: "NOOP", s: "+OK\r\n"}}, listErr, true},
		{"duplicate number", []step{{c: "LIST", s: "+OK\r\n1 10\r\n1 20\r\n.\r\n"}, {c: "NOOP", s: "+OK\r\n"}}, listErr, true},
		{"too many CAPA lines", []step{{c: "CAPA", s: "+OK\r\n" + strings.Repeat("X\r\n", maxCapaLines+1) + ".\r\n"}},
			func(c *Client) error { _, err := c.Capabilities(); return err }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := serve(t, append([]step{greet}, tt.steps...)...)
			c := dial(t, fs, clearOpts())
			if err := tt.call(c); !errors.Is(err, ErrProtocol) {
				t.Fatalf("got %v, want ErrProtocol", err)
			}
			err := c.Noop()
			if tt.usable && err != nil {
				t.Errorf("NOOP after a bad listing: %v, want the session in sync", err)
			}
			if !tt.usable && (err == nil || !strings.Contains(err.Error(), "unusable")) {
				t.Errorf("NOOP after a broken reply: %v, want session unusable", err)
			}
		})
	}
}

func statErr(c *Client) error { _, _, err := c.Stat(); return err }
func listErr(c *Client) error { _, err := c.List(); return err }

func TestCapaErrMeansNone(t *testing.T) {
	fs := serve(t, greet, step{c: "CAPA", s: "-ERR unknown command\r\n"})
	c := dial(t, fs, clearOpts())
	caps, err := c.Capabilities()
	if err != nil || !reflect.DeepEqual(caps, Caps{}) {
		t.Errorf("Capabilities() = %+v, %v; want empty, nil", caps, err)
	}
}

func TestUIDLValidation(t *testing.T) {
	uid70 := strings.Repeat("u", 70)
	good := []string{"1 abc", "1 a/b+c=.-_~!", "1 " + uid70, "7 \x21\x7e"}
	for _, line := range good {
		if _, err := parseUIDLine(line, map[int]bool{}, map[string]int{}); err != nil {
			t.Errorf("%q rejected: %v", line, err)
		}
	}
	bad := []string{"1", "1 ", "1  two-spaces", "1 has space", "1 tab\there", "1 ctl\x01", "1 del\x7f",
		"1 8bit\xe9", "1 " + uid70 + "u", "0 zero", "-1 neg", "x abc", "1 abc "}
	for _, line := range bad {
		if _, err := parseUIDLine(line, map[int]bool{}, map[string]int{}); err == nil {
			t.Errorf("%q accepted", line)
		}
	}
}

func TestUIDLBadLineKeepsSync(t *testing.T) {
	fs := serve(t, greet,
		step{c: "UIDL", s: "+OK\r\n1 good\r\n2 bad uid\r\n3 fine\r\n.\r\n"},
		step{c: "UIDL", s: "+OK\r\n1 same\r\n2 same\r\n.\r\n"},
		step{c: "NOOP", s: "+OK\r\n"},
	)
	c := dial(t, fs, clearOpts())
	_, err := c.UIDL()
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), `line 2 "2 bad uid"`) {
		t.Errorf("UIDL() error = %v, want ErrProtocol naming line 2", err)
	}
	_, err = c.UIDL()
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "also given to message 1") {
		t.Errorf("UIDL() with a repeated UID: %v, want ErrProtocol", err)
	}
	if err := c.Noop(); err != nil {
		t.Errorf("NOOP after bad UIDL listing: %v", err)
	}
}

func TestParseScan(t *testing.T) {
	for _, line := range []string{"1 -5", "1 +5", "1 abc", "1", "0 10", "x 5", "1 99999999999999999999", "2147483648 1"} {
		if _, err := parseScan(line, map[int]bool{}); err == nil {
			t.Errorf("%q accepted", line)
		}
	}
	m, err := parseScan("3 0 anything", map[int]bool{})
	if err != nil || m != (MsgInfo{3, 0}) {
		t.Errorf("parseScan(\"3 0 anything\") = %v, %v", m, err)
	}
}

func TestServerClosesMidRetr(t *testing.T) {
	fs := serve(t, greet,
		step{c: "RETR 1", s: "+OK\r\nline1\r\nline2\r\n", then: hangUp},
	)
	c := dial(t, fs, clearOpts())
	var body bytes.Buffer
	n, err := c.Retr(1, &body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Retr = %d, %v; want io.ErrUnexpectedEOF", n, err)
	}
	if n != int64(len("line1\r\nline2\r\n")) {
		t.Errorf("n = %d, want the octets received before the close", n)
	}
	if err := c.Noop(); err == nil {
		t.Error("NOOP after a truncated RETR succeeded")
	}
}

func TestRetrWriterFailsSessionUsable(t *testing.T) {
	fs := serve(t, greet,
		step{c: "RETR 1", s: "+OK\r\n" + string(stuff(nastyMessage()))},
		step{c: "QUIT", s: "+OK\r\n"},
	)
	c := dial(t, fs, clearOpts())
	n, err := c.Retr(1, &failWriter{after: 10})
	if err == nil || !strings.Contains(err.Error(), "disk full") || n != 10 {
		t.Fatalf("Retr = %d, %v; want 10, disk full", n, err)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("Quit after a writer failure: %v", err)
	}
}

func TestTimeout(t *testing.T) {
	for _, tt := range []struct {
		name string
		st   step
		call func(*Client) error
	}{
		{"status", step{c: "NOOP", delay: 800 * time.Millisecond, s: "+OK\r\n"}, (*Client).Noop},
		{"body", step{c: "RETR 1", s: "+OK\r\nabc\r\n", then: func(*session) bool { time.Sleep(800 * time.Millisecond); return false }},
			func(c *Client) error { _, err := c.Retr(1, io.Discard); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := serve(t, greet, tt.st)
			o := clearOpts()
			o.Timeout = 150 * time.Millisecond
			c := dial(t, fs, o)
			start := time.Now()
			err := tt.call(c)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("got %v, want a deadline error", err)
			}
			if d := time.Since(start); d > 700*time.Millisecond {
				t.Errorf("timed out after %v, want about 150ms", d)
			}
			if err := c.Noop(); err == nil || !strings.Contains(err.Error(), "unusable") {
				t.Errorf("NOOP after a timeout: %v, want session unusable", err)
			}
		})
	}
}

func TestContextCancel(t *testing.T) {
	fs := serve(t, greet, step{c: "NOOP", delay: 800 * time.Millisecond, s: "+OK\r\n"})
	ctx, cancel := context.WithCancel(t.Context())
	c, err := Dial(ctx, fs.addr, clearOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	if err := c.Noop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Noop = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Errorf("cancel took %v", d)
	}
}

func TestDeleManyPipelined(t *testing.T) {
	nums := make([]int, 40)
	steps := []step{greet, {c: "CAPA", s: "+OK\r\nPIPELINING\r\n.\r\n"}}
	var replies strings.Builder
	for i := range nums {
		nums[i] = i + 1
		reply := "+OK\r\n"
		if i == 1 {
			reply = "-ERR [SYS/PERM] no such message\r\n"
		}
		replies.WriteString(reply)
		// Replies are only sent after the last DELE of each batch, so a
		// client that waited for each reply would deadlock here.
		if i == pipelineBatch-1 || i == len(nums)-1 {
			steps = append(steps, step{c: fmt.Sprintf("DELE %d", i+1), s: replies.String()})
			replies.Reset()
		} else {
			steps = append(steps, step{c: fmt.Sprintf("DELE %d", i+1)})
		}
	}
	steps = append(steps, step{c: "QUIT", s: "+OK\r\n"})
	fs := serve(t, steps...)
	c := dial(t, fs, clearOpts())
	err := c.DeleMany(nums)
	var perr *Error
	if !errors.As(err, &perr) || perr.Cmd != "DELE 2" || perr.Code != "SYS/PERM" {
		t.Fatalf("DeleMany = %v, want *Error for DELE 2", err)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("Quit: %v", err)
	}
}

func TestDeleManyOneByOne(t *testing.T) {
	fs := serve(t, greet,
		step{c: "CAPA", s: "-ERR what?\r\n"},
		step{c: "DELE 3", s: "+OK\r\n"},
		step{c: "DELE 5", s: "+OK\r\n"},
		step{c: "QUIT", s: "+OK\r\n"},
	)
	c := dial(t, fs, clearOpts())
	if err := c.DeleMany([]int{3, 5}); err != nil {
		t.Fatalf("DeleMany: %v", err)
	}
	if err := c.DeleMany([]int{1, 0}); err == nil {
		t.Error("DeleMany accepted message number 0")
	}
	if err := c.Quit(); err != nil {
		t.Errorf("Quit: %v", err)
	}
}

func TestArgumentInjection(t *testing.T) {
	fs := serve(t, greet, step{c: "QUIT", s: "+OK\r\n"})
	c := dial(t, fs, clearOpts())
	if err := c.Login("bob\r\nDELE 1", "x"); err == nil {
		t.Error("Login accepted a user name with CRLF")
	}
	if err := c.Quit(); err != nil {
		t.Errorf("Quit: %v", err)
	}
}

// TestTimeoutBoundsAStallNotABody: with the deadline moved only now and
// then (extendRead), a body whose lines keep coming, each within Timeout
// of the one before, is received whole even though it takes several
// Timeouts in all; a stall after it is still cut.
func TestTimeoutBoundsAStallNotABody(t *testing.T) {
	trickle := func(s *session) bool {
		for i := range 8 {
			time.Sleep(60 * time.Millisecond)
			if _, err := s.conn.Write([]byte("line " + strconv.Itoa(i) + "\r\n")); err != nil {
				return false
			}
		}
		_, err := s.conn.Write([]byte(".\r\n"))
		return err == nil
	}
	fs := serve(t, greet,
		step{c: "RETR 1", s: "+OK\r\n", then: trickle},
		step{c: "NOOP", delay: 800 * time.Millisecond, s: "+OK\r\n"},
	)
	o := clearOpts()
	o.Timeout = 150 * time.Millisecond
	c := dial(t, fs, o)
	var got strings.Builder
	start := time.Now()
	n, err := c.Retr(1, &got)
	if err != nil || n != int64(got.Len()) || !strings.HasSuffix(got.String(), "line 7\r\n") {
		t.Fatalf("Retr = %d, %v, %q; want all 8 lines", n, err, got.String())
	}
	if d := time.Since(start); d < 3*o.Timeout {
		t.Fatalf("the body took %v, want several Timeouts for the test to mean anything", d)
	}
	if err := c.Noop(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("NOOP after a stall: %v, want a deadline error", err)
	}
}

func TestDeadlineSlack(t *testing.T) {
	for _, tt := range []struct{ timeout, want time.Duration }{
		{160 * time.Millisecond, 10 * time.Millisecond},
		{60 * time.Second, time.Second},
	} {
		if got := deadlineSlack(tt.timeout); got != tt.want {
			t.Errorf("deadlineSlack(%v) = %v, want %v", tt.timeout, got, tt.want)
		}
	}
}
