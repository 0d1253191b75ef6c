package envelope

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// The target line is written after the receivers, read back, and the
// message below is untouched; a file without it names no target.
func TestTargetRoundTrip(t *testing.T) {
	msg := "X-Popspool-Account: sales\r\nSubject: hi\r\n\r\nbody\r\n"
	e := Envelope{Sender: "bob@example.net", HasSender: true, Receivers: []string{"a@l"}, Target: "exchange", Attempts: 1}
	var buf bytes.Buffer
	if err := e.Write(&buf); err != nil {
		t.Fatal(err)
	}
	want := "X-Sender: <bob@example.net>\r\nX-Receiver: <a@l>\r\nX-Popspool-Target: exchange\r\nX-Popspool-Attempts: 1\r\n"
	if buf.String() != want {
		t.Fatalf("wrote\n%q\nwant\n%q", buf.String(), want)
	}
	buf.WriteString(msg)
	r := bufio.NewReader(&buf)
	got, err := Read(r)
	if err != nil || got.Target != "exchange" || got.Attempts != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != msg {
		t.Fatalf("message changed: %q", rest)
	}

	buf.Reset()
	Envelope{HasSender: true, Receivers: []string{"a@l"}}.Write(&buf)
	if strings.Contains(buf.String(), "Target") {
		t.Fatalf("a line for no target: %q", buf.String())
	}
	got, _ = Read(bufio.NewReader(&buf))
	if got.Target != "" {
		t.Fatalf("target %q", got.Target)
	}
}

// A hand-written line is read in any case and order, with spaces around
// the name, as the other envelope lines are; a line break in the value
// cannot forge another line.
func TestTargetHandWritten(t *testing.T) {
	in := "x-popspool-target:   Dovecot \nX-Receiver: <a@l>\nX-Sender: <s@x>\nFrom: s@x\n\nbody\n"
	e, err := Read(bufio.NewReader(strings.NewReader(in)))
	if err != nil || e.Target != "dovecot" || len(e.Receivers) != 1 || e.Sender != "s@x" {
		t.Fatalf("%+v %v", e, err)
	}
	var buf bytes.Buffer
	Envelope{Receivers: []string{"a@l"}, Target: "x\r\nX-Receiver: <evil@x>"}.Write(&buf)
	back, _ := Read(bufio.NewReader(&buf))
	if len(back.Receivers) != 1 {
		t.Fatalf("forged receiver: %+v from %q", back, buf.String())
	}
}
