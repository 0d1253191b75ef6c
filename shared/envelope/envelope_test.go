package envelope

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	msg := "Received: from x\r\nX-Sender: <inner@x>\r\nSubject: hi\r\n\r\nbody\r\n"
	next := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	e := Envelope{Sender: "bob@example.net", HasSender: true, Receivers: []string{"a@l", "b@l"},
		Attempts: 2, NextAttempt: next, LastError: "451 4.3.0 try\r\nlater"}
	var buf bytes.Buffer
	e.Write(&buf)
	buf.WriteString(msg)
	r := bufio.NewReader(&buf)
	got, err := Read(r)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != msg {
		t.Fatalf("message changed: %q", rest)
	}
	if got.Sender != e.Sender || len(got.Receivers) != 2 || got.Attempts != 2 || !got.NextAttempt.Equal(next) || got.LastError != "451 4.3.0 try  later" {
		t.Fatalf("got %+v", got)
	}
}

func TestNullSenderAndNoEnvelope(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("X-Sender: <>\nX-Receiver: <a@l>\nFrom: x\n\nb"))
	e, err := Read(r)
	if err != nil || !e.HasSender || e.Sender != "" || len(e.Receivers) != 1 {
		t.Fatalf("%+v %v", e, err)
	}
	r = bufio.NewReader(strings.NewReader("From: x\r\n\r\nb"))
	e, _ = Read(r)
	if e.HasSender || len(e.Receivers) != 0 {
		t.Fatalf("%+v", e)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "From: x\r\n\r\nb" {
		t.Fatalf("consumed: %q", rest)
	}
}

func TestBadAttempts(t *testing.T) {
	_, err := Read(bufio.NewReader(strings.NewReader("X-Popspool-Attempts: many\r\n\r\n")))
	if err == nil {
		t.Fatal("accepted")
	}
}

func TestReceiverWithORCPT(t *testing.T) {
	in := "X-Sender: <bob@example.net>\r\nX-Receiver: <alice@l> ORCPT=rfc822;alice@isp.example\r\n" +
		"X-Receiver: <carol@l> NOTIFY=NEVER ORCPT=<carol@isp.example>\r\nX-Receiver: <dave@l>\r\nSubject: x\r\n\r\n"
	e, err := Read(bufio.NewReader(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(e.Receivers, ",") != "alice@l,carol@l,dave@l" || e.Originals["alice@l"] != "alice@isp.example" ||
		e.Originals["carol@l"] != "carol@isp.example" || e.Originals["dave@l"] != "" {
		t.Fatalf("%+v", e)
	}
	var b bytes.Buffer
	e.Write(&b)
	want := "X-Sender: <bob@example.net>\r\nX-Receiver: <alice@l> ORCPT=rfc822;alice@isp.example\r\n" +
		"X-Receiver: <carol@l> ORCPT=rfc822;carol@isp.example\r\nX-Receiver: <dave@l>\r\n"
	if b.String() != want {
		t.Fatalf("wrote %q", b.String())
	}
	// Without originals nothing changes: old files and writers are unaffected.
	b.Reset()
	Envelope{Receivers: []string{"a@l"}}.Write(&b)
	if b.String() != "X-Receiver: <a@l>\r\n" {
		t.Fatalf("wrote %q", b.String())
	}
}
