package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/smtpsink"
)

// Issue 15.2: the address a multi-drop message was found for, before
// aliases, goes from the POP3 mailbox through rewrited's envelope to the
// local server as RCPT's ORCPT, xtext-encoded, when the server offers DSN
// (no dsn key in the config).
func TestOriginalRecipientReachesTheWire(t *testing.T) {
	sink, err := smtpsink.StartDSN()
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	f, err := harness.New(t.TempDir(), bins, harness.Options{Target: "smtp://" + sink.Addr,
		Routing: `local_domains = ["contoso.local"]
aliases = { "bob+list@contoso.local" = "robert@contoso.local" }`})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	msgs := map[string]string{
		"1.eml": "Return-Path: <s@example.net>\r\nDelivered-To: office@isp.example\r\nDelivered-To: bob+list@contoso.local\r\n" +
			"To: office@isp.example\r\nFrom: s@example.net\r\nSubject: aliased\r\n\r\nbody one\r\n",
		"2.eml": "Return-Path: <s@example.net>\r\nTo: Jane <jane@contoso.local>, x@else.example\r\nFrom: s@example.net\r\nSubject: to\r\n\r\nbody two\r\n",
	}
	for name, m := range msgs {
		if err := os.WriteFile(filepath.Join(f.Box, name), []byte(m), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	startAll(t, f)
	if !harness.WaitFor(60*time.Second, func() bool { return sink.Count() == 2 && f.Settled() }) {
		b, _ := os.ReadFile(filepath.Join(f.Logs, "deliverd.log"))
		t.Fatalf("%d of 2 delivered, spool %v\n%s", sink.Count(), f.SpoolFiles(), tail(b, 3000))
	}
	got := sink.RcptLines()
	slices.Sort(got)
	want := []string{"RCPT TO:<jane@contoso.local> ORCPT=RFC822;jane@contoso.local",
		"RCPT TO:<robert@contoso.local> ORCPT=RFC822;bob+2Blist@contoso.local"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("RCPT lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
