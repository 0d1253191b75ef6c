package dsn

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
)

func TestWriteIsAnRFC3464Report(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	r := Report{ReportingMTA: "gw.contoso.local", From: "postmaster@contoso.local", To: []string{"postmaster@contoso.local"},
		MessageID: "01JABCDEFGHJKMNPQRSTVWXYZ0", Arrival: at.Add(-time.Hour),
		Recipients: []Recipient{
			{Final: "bob@contoso.local", Original: "bob@isp.example", Status: Status(550, "5.1.1"), Diagnostic: "550 5.1.1 <bob@contoso.local>: User unknown", SMTP: true, LastTry: at},
			{Final: "eve@contoso.local", Status: "4.4.7", Diagnostic: "451 4.3.0 try later\r\nsecond line", SMTP: true, LastTry: at},
		}}
	orig := "From: Jörg <j@example.net>\r\nSubject: hello\r\nContent-Type: text/plain\r\n"
	var buf bytes.Buffer
	if err := Write(&buf, r, []byte(orig), at); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bytes.ReplaceAll(buf.Bytes(), []byte("\r\n"), nil), []byte("\n")) {
		t.Fatal("bare LF in the DSN")
	}
	e, err := message.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	ct, params, _ := e.Header.ContentType()
	if ct != "multipart/report" || params["report-type"] != "delivery-status" || e.Header.Get("Auto-Submitted") != "auto-replied" {
		t.Fatalf("header %v %v", ct, params)
	}
	mr := e.MultipartReader()
	var types []string
	var bodies []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pt, _, _ := p.Header.ContentType()
		b, _ := io.ReadAll(p.Body)
		types = append(types, pt)
		bodies = append(bodies, string(b))
	}
	if strings.Join(types, ",") != "text/plain,message/delivery-status,text/rfc822-headers" {
		t.Fatalf("parts %v", types)
	}
	ds := bodies[1]
	for _, want := range []string{
		"Reporting-MTA: dns; gw.contoso.local\r\n",
		"Arrival-Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n",
		"\r\n\r\nOriginal-Recipient: rfc822; bob@isp.example\r\nFinal-Recipient: rfc822; bob@contoso.local\r\nAction: failed\r\nStatus: 5.1.1\r\n",
		"Diagnostic-Code: smtp; 550 5.1.1 <bob@contoso.local>: User unknown\r\nLast-Attempt-Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n",
		"Final-Recipient: rfc822; eve@contoso.local\r\nAction: failed\r\nStatus: 4.4.7\r\nDiagnostic-Code: smtp; 451 4.3.0 try later second line\r\n",
	} {
		if !strings.Contains(ds, want) {
			t.Errorf("delivery-status lacks %q:\n%s", want, ds)
		}
	}
	if bodies[2] != orig {
		t.Errorf("rfc822-headers %q", bodies[2])
	}
	if !IsReport(buf.Bytes()) && !IsReport([]byte("Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n")) {
		t.Error("a report not recognised")
	}
	if IsReport([]byte(orig)) {
		t.Error("a plain message taken for a report")
	}
}

func TestStatus(t *testing.T) {
	for _, c := range []struct {
		code int
		enh  string
		want string
	}{{550, "5.1.1", "5.1.1"}, {550, "", "5.0.0"}, {452, "4.2.2", "4.2.2"}, {550, "4.2.2", "5.0.0"}, {0, "", "4.0.0"}} {
		if got := Status(c.code, c.enh); got != c.want {
			t.Errorf("Status(%d, %q) = %q, want %q", c.code, c.enh, got, c.want)
		}
	}
}
