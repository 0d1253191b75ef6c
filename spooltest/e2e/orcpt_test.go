package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/postfix"
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

// Against a real Postfix: a recipient it accepts and then cannot deliver
// (its transport is error:) gets a DSN from Postfix to the sender, and the
// DSN's Original-Recipient is the ORCPT deliverd sent, the address before
// the alias. Postfix reports ORCPT only there, not in its log.
func TestPostfixDSNNamesTheOriginalRecipient(t *testing.T) {
	pf := postfix.Start(t, postfix.Options{MainCF: []string{
		"transport_maps = inline:{ {carol@popspool.test = error:5.2.1 mailbox disabled for this test} }",
		// Accept at RCPT what the error transport bounces later.
		"smtpd_reject_unlisted_recipient = no"}})
	f, err := harness.New(t.TempDir(), bins, harness.Options{Target: "smtp://" + pf.Addr,
		Routing: `local_domains = ["popspool.test"]
aliases = { "dave+x@popspool.test" = "carol@popspool.test" }`})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := "Return-Path: <alice@popspool.test>\r\nDelivered-To: office@isp.example\r\nDelivered-To: dave+x@popspool.test\r\n" +
		"To: office@isp.example\r\nFrom: alice@popspool.test\r\nSubject: to be bounced\r\n\r\nbody\r\n"
	if err := os.WriteFile(filepath.Join(f.Box, "1.eml"), []byte(m), 0o600); err != nil {
		t.Fatal(err)
	}
	startAll(t, f)
	all := pf.WaitCount(t, 1, 60*time.Second)
	got := all[pf.Address("alice")]
	if len(got) != 1 {
		t.Fatalf("Maildirs: %s", postfix.String(all))
	}
	// Postfix writes the address type as it came ("RFC822" from go-smtp);
	// RFC 3464 field names and address types are case-insensitive.
	dsn := strings.ReplaceAll(string(got[0].Data), "\r\n", "\n")
	for _, want := range []string{"original-recipient: rfc822;dave+x@popspool.test", "final-recipient: rfc822; carol@popspool.test", "status: 5.2.1"} {
		if !strings.Contains(strings.ToLower(dsn), want) {
			t.Errorf("Postfix's DSN lacks %q:\n%s", want, dsn)
		}
	}
}
