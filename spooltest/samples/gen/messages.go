package main

import (
	"fmt"
	"strings"
)

const alice = "Alice Example <alice@example.org>"

func samples() []sample {
	return []sample{
		{"01-plain-ascii", plainASCII()},
		{"02-qp-utf8-encoded-subject", qpUTF8()},
		{"03-alternative-text-html", alternative()},
		{"04-mixed-png-attachment", pngAttachment()},
		{"05-8bit-no-mime", eightBitNoMIME()},
		{"06-long-lines", longLines()},
		{"07-dot-lines", dotLines()},
		{"08-no-trailing-newline", noTrailingNewline()},
		{"09-long-folded-header", foldedHeader()},
		{"10-no-date-no-message-id", noDateNoID()},
		{"11-many-recipients", manyRecipients()},
		{"12-bounce-report", bounce()},
		{"13-mailing-list", mailingList()},
		{"14-nul-and-8bit-header", nulAnd8bitHeader()},
		{"15-broken-mime-bare-lf", brokenMIMEBareLF()},
		{"16-html-only", htmlOnly()},
		{"17-base64-utf8-text", base64Text()},
		{"18-forwarded-rfc822", forwarded()},
		{"19-latin1-qp", latin1QP()},
		{"20-empty-body", emptyBody()},
		{"21-dot-final-line", dotFinalLine()},
		{"22-dot-no-trailing-newline", dotNoTrailingNewline()},
		{"23-pdf-like-attachment", pdfAttachment()},
		{"24-format-flowed", formatFlowed()},
	}
}

func plainASCII() string {
	return msg(head(1, "Bob Sender <bob@example.net>", alice, "Plain ASCII hello"),
		"Hi Alice,",
		"",
		"This is a plain US-ASCII message with no MIME headers at all.",
		"It has a few short lines and one empty line above.",
		"",
		"-- ",
		"Bob")
}

func qpUTF8() string {
	h := head(2, "=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.net>", alice,
		"=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen_=E2=80=93_Caf=C3=A9?=",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=UTF-8",
		"Content-Transfer-Encoding: quoted-printable")
	text := "Hallo Alice,\n\nschöne Grüße aus München! Das Café am Marienplatz hat " +
		"wieder geöffnet – mit Käsekuchen für 3,50 € und einem sehr langen Satz, " +
		"der über die 76-Zeichen-Grenze hinausgeht und deshalb weich umbrochen wird.\n" +
		"Ein Gleichheitszeichen: a=b, und ein Emoji: 🎉\n\nJürgen\n"
	return crlf(h...) + "\r\n" + qp(text)
}

func alternative() string {
	b := "alt-03-7f3a9c"
	h := head(3, "Carol Newsletter <carol@example.com>", alice, "Alternative text and HTML",
		"MIME-Version: 1.0",
		`Content-Type: multipart/alternative; boundary="`+b+`"`)
	return msg(h,
		"This is a multi-part message in MIME format.",
		"--"+b,
		"Content-Type: text/plain; charset=us-ascii",
		"Content-Transfer-Encoding: 7bit",
		"",
		"Plain version: the meeting moved to 3 pm.",
		"",
		"--"+b,
		"Content-Type: text/html; charset=us-ascii",
		"Content-Transfer-Encoding: 7bit",
		"",
		"<html><body><p>HTML version: the meeting moved to <b>3&nbsp;pm</b>.</p></body></html>",
		"",
		"--"+b+"--",
		"")
}

func pngAttachment() string {
	b := "mixed-04-boundary"
	h := head(4, "Dave Photos <dave@example.net>", alice, "Mixed with a PNG attachment",
		"MIME-Version: 1.0",
		`Content-Type: multipart/mixed; boundary="`+b+`"`)
	lines := []string{
		"--" + b,
		"Content-Type: text/plain; charset=us-ascii",
		"",
		"The picture is attached.",
		"",
		"--" + b,
		`Content-Type: image/png; name="gradient.png"`,
		`Content-Disposition: attachment; filename="gradient.png"`,
		"Content-Transfer-Encoding: base64",
		"",
	}
	lines = append(lines, b64(pngBytes())...)
	lines = append(lines, "--"+b+"--")
	return msg(h, lines...)
}

func eightBitNoMIME() string {
	return msg(head(5, "Eve <eve@example.net>", alice, "Eight-bit body without MIME"),
		"Ça va? Smörgåsbord, naïve façade, Ærø, Łódź, Ελληνικά, русский, 日本語.",
		"This body is raw UTF-8 but the header declares no MIME-Version",
		"and no charset; a relay must pass the octets through untouched.")
}

func longLines() string {
	l2k := strings.Repeat("0123456789", 200)
	// A dot at every 1 KiB offset of the line: readers that split long
	// lines into power-of-two pieces see pieces starting with "." that are
	// not line starts and must not be stuffed.
	l20k := make([]byte, 20000)
	for i := range l20k {
		l20k[i] = byte('a' + i%26)
		if i > 0 && i%1024 == 0 {
			l20k[i] = '.'
		}
	}
	return msg(head(6, "Frank <frank@example.net>", alice, "Lines of 2000 and 20000 characters"),
		"The next line has 2000 characters:",
		l2k,
		"The next line has 20000 characters:",
		string(l20k),
		"End.")
}

func dotLines() string {
	return msg(head(7, "Grace <grace@example.net>", alice, "Lines beginning with dots"),
		".",
		"..",
		".leading dot",
		"..two leading dots",
		"...",
		". space after dot",
		"",
		".",
		"",
		"The line above this paragraph is exactly one dot; POP3 must stuff it.",
		"last line")
}

func noTrailingNewline() string {
	m := msg(head(8, "Heidi <heidi@example.net>", alice, "No trailing newline"),
		"This message ends without CRLF after the last line.",
		"Here is that last line")
	return strings.TrimSuffix(m, "\r\n")
}

func foldedHeader() string {
	refs := make([]string, 60)
	for i := range refs {
		refs[i] = fmt.Sprintf("<thread-%03d.1772440000@lists.example.com>", i)
	}
	long := []string{"X-Long-Header: start"}
	for i := 0; i < 40; i++ {
		long = append(long, fmt.Sprintf("\tfolded segment %02d with some words to make it long enough to matter", i))
	}
	h := head(9, "Ivan <ivan@example.net>", alice, "A very long folded header\r\n that continues on a second line",
		"References: "+strings.Join(refs, "\r\n "),
		"In-Reply-To: "+refs[59],
		strings.Join(long, "\r\n"))
	return msg(h, "The References and X-Long-Header fields above are folded over many lines.")
}

func noDateNoID() string {
	return msg([]string{
		"From: Judy <judy@example.net>",
		"To: " + alice,
		"Subject: Missing Date and Message-ID",
	},
		"A relay would add Date and Message-ID; ours must not need them.")
}

func manyRecipients() string {
	h := []string{
		"Return-Path: <mallory@example.net>",
		"From: Mallory <mallory@example.net>",
		`To: Alice Example <alice@example.org>, "Bob, Jr." <bob@example.net>,`,
		" carol@example.com, Dave <dave@example.net>",
		"Cc: Eve <eve@example.net>, frank@example.net",
		"Cc: second-cc@example.org",
		"Reply-To: team@example.org",
		"Subject: Several To and Cc addresses",
		"Date: " + date(11),
		"Message-ID: <sample-11.20260313@example.net>",
	}
	return msg(h, "Everyone is on this one, including a display name with a comma.")
}

func bounce() string {
	b := "report-12-c0ffee"
	h := []string{
		"Return-Path: <>",
		"Received: from mx.example.net (mx.example.net [192.0.2.12])\r\n\tby pop.example.org; " + date(12),
		"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>",
		"To: " + alice,
		"Subject: Undelivered Mail Returned to Sender",
		"Date: " + date(12),
		"Message-ID: <bounce-12.20260302@mx.example.net>",
		"Auto-Submitted: auto-replied",
		"MIME-Version: 1.0",
		`Content-Type: multipart/report; report-type=delivery-status; boundary="` + b + `"`,
	}
	return msg(h,
		"This is a MIME-encapsulated message.",
		"",
		"--"+b,
		"Content-Description: Notification",
		"Content-Type: text/plain; charset=us-ascii",
		"",
		"I'm sorry to have to inform you that your message could not",
		"be delivered to one or more recipients.",
		"",
		"<nobody@example.com>: host mx.example.com[192.0.2.99] said: 550 5.1.1",
		"    <nobody@example.com>: Recipient address rejected: User unknown",
		"",
		"--"+b,
		"Content-Description: Delivery report",
		"Content-Type: message/delivery-status",
		"",
		"Reporting-MTA: dns; mx.example.net",
		"Arrival-Date: "+date(11),
		"",
		"Final-Recipient: rfc822; nobody@example.com",
		"Action: failed",
		"Status: 5.1.1",
		"Remote-MTA: dns; mx.example.com",
		"Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.com>: User unknown",
		"",
		"--"+b,
		"Content-Description: Undelivered Message Headers",
		"Content-Type: text/rfc822-headers",
		"",
		"From: "+alice,
		"To: nobody@example.com",
		"Subject: Lunch on Friday?",
		"Message-ID: <lunch-1@example.org>",
		"",
		"--"+b+"--")
}

func mailingList() string {
	h := head(13, "Announce Bot <announce@lists.example.com>", "announce@lists.example.com",
		"[announce] Release 2.4 is out",
		"Sender: announce-bounces@lists.example.com",
		"List-Id: Project announcements <announce.lists.example.com>",
		"List-Unsubscribe: <mailto:announce-leave@lists.example.com>,\r\n <https://lists.example.com/unsubscribe/announce>",
		"List-Post: <mailto:announce@lists.example.com>",
		"List-Archive: <https://lists.example.com/archive/announce>",
		"Precedence: list",
		"X-Loop: announce@lists.example.com")
	return msg(h,
		"Release 2.4 is out. See the archive for the changelog.",
		"",
		"_______________________________________________",
		"announce mailing list -- announce@lists.example.com",
		"To unsubscribe send an email to announce-leave@lists.example.com")
}

func nulAnd8bitHeader() string {
	h := head(14, "Zoë Ångström <zoe@example.net>", alice,
		"Raw 8-bit header: Grüße, naïve café, and NUL bytes",
		"X-Comment: header with raw UTF-8 — not encoded-word",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: 8bit")
	return msg(h,
		"The next line has NUL bytes: [\x00] and [\x00\x00].",
		"And a DEL \x7f, an ESC \x1b and a Latin-1 byte \xe9 that is not valid UTF-8.",
		"\x00 leading NUL line")
}

// brokenMIMEBareLF is the one sample with bare LF line endings. Its MIME
// is broken on purpose: one part uses an undeclared boundary and the
// closing boundary is missing. The pipeline must deliver it intact.
func brokenMIMEBareLF() string {
	lines := []string{
		"Return-Path: <legacy@example.net>",
		"Received: from legacy.example.net (legacy.example.net [192.0.2.15])",
		"\tby pop.example.org; " + date(15),
		"From: Legacy Mailer <legacy@example.net>",
		"To: " + alice,
		"Subject: Broken MIME with bare LF line endings",
		"Date: " + date(15),
		"Message-ID: <sample-15.broken@legacy.example.net>",
		"MIME-Version: 1.0",
		`Content-Type: multipart/mixed; boundary="outer-15-declared"`,
		"",
		"This is a multi-part message in MIME format.",
		"",
		"--outer-15-declared",
		"Content-Type: text/plain; charset=us-ascii",
		"",
		"The first part is fine.",
		"",
		"--bogus-boundary-never-declared",
		"Content-Type: text/html; charset=us-ascii",
		"",
		"<p>This part sits behind a boundary that was never declared.</p>",
		"",
		"--outer-15-declared",
		`Content-Type: application/octet-stream; name="data.bin"`,
		"Content-Transfer-Encoding: base64",
		"",
		"SGVsbG8sIGJyb2tlbiB3b3JsZCEK",
		"",
		"(the closing boundary is missing)",
	}
	return strings.Join(lines, "\n") + "\n"
}

func htmlOnly() string {
	h := head(16, "Shop <noreply@shop.example.com>", alice, "HTML only, no text part",
		"MIME-Version: 1.0",
		"Content-Type: text/html; charset=utf-8",
		"Content-Transfer-Encoding: 7bit")
	return msg(h,
		"<!DOCTYPE html>",
		`<html><head><meta charset="utf-8"><title>Order</title></head>`,
		"<body><h1>Your order #1234</h1><p>has shipped.</p></body></html>")
}

func base64Text() string {
	h := head(17, "Kenji <kenji@example.jp>", alice, "=?UTF-8?B?5pel5pys6Kqe44Gu5Lu25ZCN?=",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=UTF-8",
		"Content-Transfer-Encoding: base64")
	text := "こんにちは、アリスさん。\nこれは base64 で符号化された UTF-8 の本文です。\n"
	return msg(h, b64([]byte(text))...)
}

func forwarded() string {
	b := "fwd-18-boundary"
	h := head(18, "Liam <liam@example.net>", alice, "Fwd: the original announcement",
		"MIME-Version: 1.0",
		`Content-Type: multipart/mixed; boundary="`+b+`"`)
	return msg(h,
		"--"+b,
		"Content-Type: text/plain; charset=us-ascii",
		"",
		"See the forwarded message below.",
		"",
		"--"+b,
		"Content-Type: message/rfc822",
		"Content-Disposition: inline",
		"",
		"From: Original Sender <orig@example.com>",
		"To: liam@example.net",
		"Subject: The original announcement",
		"Date: "+date(-48),
		"Message-ID: <orig-18@example.com>",
		"",
		"This is the inner message, with its own header.",
		".inner line starting with a dot",
		"",
		"--"+b+"--")
}

func latin1QP() string {
	h := head(19, "=?ISO-8859-1?Q?Ren=E9e_Fran=E7ois?= <renee@example.fr>", alice,
		"=?ISO-8859-1?Q?Caf=E9_cr=E8me_br=FBl=E9e?=",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=ISO-8859-1",
		"Content-Transfer-Encoding: quoted-printable")
	return msg(h,
		"Bonjour Alice,",
		"",
		"Le caf=E9 et la cr=E8me br=FBl=E9e =E9taient d=E9licieux. Cette ligne est =",
		"coup=E9e par un soft line break.",
		"",
		"Ren=E9e")
}

func emptyBody() string {
	return msg(head(20, "Mia <mia@example.net>", alice, "Empty body"))
}

func dotFinalLine() string {
	return msg(head(21, "Noah <noah@example.net>", alice, "Last line is a single dot"),
		"The last line of this message is exactly one dot:",
		".")
}

func dotNoTrailingNewline() string {
	m := msg(head(22, "Olivia <olivia@example.net>", alice, "Ends in a dot without newline"),
		"The message ends with a dot and no CRLF after it:",
		".")
	return strings.TrimSuffix(m, "\r\n")
}

func pdfAttachment() string {
	b := "pdf-23-boundary"
	h := head(23, "Billing <billing@example.com>", alice, "Invoice attached as PDF",
		"MIME-Version: 1.0",
		`Content-Type: multipart/mixed; boundary="`+b+`"`)
	lines := []string{
		"--" + b,
		"Content-Type: text/plain; charset=us-ascii",
		"",
		"Your invoice is attached.",
		"",
		"--" + b,
		`Content-Type: application/pdf; name="invoice-2026-03.pdf"`,
		`Content-Disposition: attachment; filename="invoice-2026-03.pdf"`,
		"Content-Transfer-Encoding: base64",
		"",
	}
	lines = append(lines, b64(pdfLike())...)
	lines = append(lines, "", "--"+b+"--", "", "Epilogue text after the closing boundary.")
	return msg(h, lines...)
}

func formatFlowed() string {
	h := head(24, "Paul <paul@example.net>", alice, "Format flowed with trailing spaces",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=us-ascii; format=flowed; delsp=no",
		"Content-Transfer-Encoding: 7bit")
	return msg(h,
		"This paragraph is flowed: each line but the last ends in a ",
		"space, so a reader joins them into one long line when it ",
		"displays the text.",
		"",
		"> Quoted text, also ",
		"> flowed.",
		"",
		"A line with a tab\there and trailing tab\t",
		"From the beginning of a line (mbox would escape this).",
		"-- ",
		"Paul")
}
