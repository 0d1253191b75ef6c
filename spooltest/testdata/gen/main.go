// Command gen writes the corpus of malformed and unusual messages in
// ../corpus, one file each, and corpus/EXPECT: for each file, where
// rewrited must put it ("pickup", or "failed <event>"). Regenerate with
// `go generate ./spooltest/testdata` after changing the cases.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type kase struct {
	name, expect, body string
}

func main() {
	dir := "corpus"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail(err)
	}
	var expect []string
	for _, k := range cases() {
		if err := os.WriteFile(filepath.Join(dir, k.name+".eml"), []byte(k.body), 0o644); err != nil {
			fail(err)
		}
		expect = append(expect, k.name+".eml "+k.expect)
	}
	sort.Strings(expect)
	head := "# file  outcome (pickup, or failed <event id>); written by gen/main.go\n"
	if err := os.WriteFile(filepath.Join(dir, "EXPECT"), []byte(head+strings.Join(expect, "\n")+"\n"), 0o644); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

const (
	std  = "From: Bob <bob@example.net>\r\nTo: office@isp.example\r\nSubject: test\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <c@example.net>\r\n"
	body = "\r\nHello.\r\n"
)

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func cases() []kase {
	own := "Received: from pop.isp.example\r\n\tby h (popspool fetchd; account office; uidl 1) with POP3S id X;\r\n\tMon, 23 Nov 2026 10:00:00 +0000\r\n"
	return []kase{
		{"01-plain", "pickup", std + body},
		{"02-bare-lf", "pickup", strings.ReplaceAll(std+body, "\r\n", "\n")},
		{"03-mixed-line-endings", "pickup", "From: a@example.net\nTo: b@example.net\r\nSubject: mixed\n\r\nline\nline\r\n"},
		{"04-nul-in-header-value", "pickup", "Subject: a\x00b\r\n" + std + body},
		{"05-nul-in-body", "pickup", std + "\r\nbin\x00ary\x00\r\n"},
		{"06-utf8-raw-header", "pickup", "Subject: Grüße aus Köln – 日本語\r\nFrom: Jörg <j@example.net>\r\n" + body},
		{"07-latin1-raw-header", "pickup", "Subject: Gr\xfc\xdfe\r\nFrom: J\xf6rg <j@example.net>\r\n" + body},
		{"08-encoded-word", "pickup", "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nFrom: =?utf-8?b?SsO2cmc=?= <j@example.net>\r\n" + body},
		{"09-encoded-word-unknown-charset", "pickup", "Subject: =?x-klingon?q?abc?=\r\nFrom: =?x-klingon?q?abc?= <k@example.net>\r\n" + body},
		{"10-encoded-word-broken-base64", "pickup", "Subject: =?utf-8?b?!!!notbase64?=\r\n" + std + body},
		{"11-body-line-5000", "pickup", std + "\r\n" + strings.Repeat("x", 5000) + "\r\n"},
		{"12-header-line-5000", "pickup", "X-Long: " + strings.Repeat("y", 5000) + "\r\n" + std + body},
		{"13-header-line-200k", "pickup", "X-Huge: " + strings.Repeat("z", 200000) + "\r\n" + std + body},
		{"14-header-never-ends-2mb", "failed 3003", std + strings.Repeat("X-Filler: 0123456789012345678901234567890123456789\r\n", 25000)},
		{"15-header-to-eof-no-blank-line", "pickup", "From: a@example.net\r\nSubject: no body\r\n"},
		{"16-no-header-blank-first", "failed 3003", "\r\nJust a body without header.\r\n"},
		{"17-mbox-from-line", "failed 3003", "From bob@example.net Mon Nov 23 10:00:00 2026\r\n" + std + body},
		{"18-line-without-colon", "failed 3003", "From: a@example.net\r\nthis line has no colon\r\nSubject: x\r\n" + body},
		{"19-space-in-key", "failed 3003", "X Bad Key: 1\r\n" + std + body},
		{"20-leading-whitespace-first-line", "failed 3003", " From: a@example.net\r\n" + std + body},
		{"21-cr-cr-lf-endings", "failed 3003", "From: a@example.net\r\r\nSubject: crcrlf\r\r\n\r\r\nbody\r\r\n"},
		{"22-multipart-missing-close", "pickup", std + "Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\npart\r\n"},
		{"23-multipart-no-boundary", "pickup", std + "Content-Type: multipart/mixed\r\n\r\n--XX\r\n\r\npart\r\n--XX--\r\n"},
		{"24-boundary-never-appears", "pickup", std + "Content-Type: multipart/mixed; boundary=NEVER\r\n\r\n--OTHER\r\n\r\nx\r\n"},
		{"25-invalid-base64", "pickup", std + "Content-Transfer-Encoding: base64\r\n\r\n!!!! not base64 ~~~~\r\n"},
		{"26-unknown-cte", "pickup", std + "Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f\r\n`\r\nend\r\n"},
		{"27-missing-date-and-message-id", "pickup", "From: a@example.net\r\nTo: b@example.net\r\nSubject: nodate\r\n" + body},
		{"28-missing-from", "pickup", "To: b@example.net\r\nSubject: nofrom\r\n" + body},
		{"29-unparseable-from", "pickup", "From: <<<>>>@@@\r\nSubject: badfrom\r\n" + body},
		{"30-null-return-path-bounce", "pickup", "Return-Path: <>\r\nFrom: MAILER-DAEMON@isp.example\r\nSubject: Undelivered\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B\r\n\r\nbounce\r\n--B--\r\n"},
		{"31-garbage-return-path", "pickup", "Return-Path: not an address at all\r\n" + std + body},
		{"32-empty-file", "failed 3007", ""},
		{"33-only-envelope-lines", "failed 3007", "X-Sender: <a@example.net>\r\nX-Receiver: <b@contoso.local>\r\n"},
		{"34-binary-garbage", "failed 3003", "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00>\x00\x01\x00\x00\x00"},
		{"35-png-bytes", "failed 3003", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"},
		{"36-utf8-bom-first", "failed 3003", "\xef\xbb\xbfFrom: a@example.net\r\nSubject: bom\r\n" + body},
		{"37-only-crlf", "failed 3003", "\r\n"},
		{"38-empty-subject", "pickup", "Subject:\r\n" + std + body},
		{"39-empty-key", "pickup", ": no key\r\n" + std + body},
		{"40-space-before-colon", "pickup", "Subject : spaced\r\n" + std + body},
		{"41-duplicate-headers", "pickup", std + "From: Second <second@example.net>\r\nSubject: second subject\r\n" + body},
		{"42-ten-thousand-headers", "pickup", strings.Repeat("X-Many: v\r\n", 10000) + std + body},
		{"43-folded-with-tabs", "pickup", "Subject: folded\r\n\tacross\r\n\t\tlines\r\n" + std + body},
		{"44-continuation-first", "failed 3003", "\tcontinuation first\r\n" + std + body},
		{"45-bare-cr-in-value", "pickup", "Subject: a\rb\r\n" + std + body},
		{"46-old-envelope-at-top", "pickup", "X-Sender: <old@example.net>\r\nX-Receiver: <old@contoso.local>\r\nSubject: case 46\r\n" + std + body},
		{"47-bad-attempts-line", "failed 3002", "X-Popspool-Attempts: many\r\n" + std + body},
		{"48-moved-back-from-failed", "pickup", "X-Popspool-Failed: 3004 no recipient\r\nSubject: case 48\r\n" + std + body},
		{"49-nested-rfc822-broken", "pickup", std + "Content-Type: message/rfc822\r\n\r\nthis is not\r\na message\r\n"},
		{"50-dot-lines", "pickup", std + "\r\n.\r\n..\r\n...\r\n.x\r\n"},
		{"51-from-lines-in-body", "pickup", std + "\r\nFrom here on\r\nFrom bob@x Mon\r\n>From quoted\r\n"},
		{"52-thousand-recipients", "pickup", "To: " + thousand() + "\r\n" + std + body},
		{"53-8bit-in-key", "failed 3003", "S\xfcbject: x\r\n" + std + body},
		{"54-mail-loop", "failed 3009", own + own + own + own + std + body},
		{"55-within-hops", "pickup", own + own + std + body},
		{"56-very-long-body", "pickup", std + "\r\n" + strings.Repeat("0123456789abcdef\r\n", 10000)},
		{"57-no-trailing-newline", "pickup", std + "\r\nlast line"},
		{"58-crlf-dot-crlf-in-body", "pickup", std + "\r\nbefore\r\n.\r\nafter\r\n"},
		{"59-tab-only-header-line", "pickup", "From: a@example.net\r\n\t\r\nSubject: x\r\n" + body},
		{"60-semicolon-recipient-list", "pickup", "To: a@example.net; b@example.net\r\nSubject: semi\r\n" + body},
	}
}

func thousand() string {
	var b strings.Builder
	for i := 0; i < 1000; i++ {
		if i > 0 {
			b.WriteString(",\r\n ")
		}
		fmt.Fprintf(&b, "user%d@example.net", i)
	}
	return b.String()
}
