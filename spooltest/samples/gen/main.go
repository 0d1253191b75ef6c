// Command gen writes data/*.eml, the sample messages, with exact line endings.
// Run it with `go generate` in spooltest/samples; its output is committed, so the
// samples never change by accident (the PNG in 04 depends on the image/png
// encoder, so regenerating with another Go version may change that file).
package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"math/rand/v2"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type sample struct {
	name string
	body string
}

func main() {
	if err := os.MkdirAll("data", 0o755); err != nil {
		log.Fatal(err)
	}
	for _, s := range samples() {
		if err := os.WriteFile(filepath.Join("data", s.name+".eml"), []byte(s.body), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// crlf joins lines with CRLF and ends the last one with CRLF too.
func crlf(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n" }

// date gives a fixed RFC 5322 date, n hours after a base.
func date(n int) string {
	base := time.Date(2026, 3, 2, 9, 15, 0, 0, time.FixedZone("", 3600))
	return base.Add(time.Duration(n) * time.Hour).Format(time.RFC1123Z)
}

// head is the common header block; extra lines go before the empty line.
func head(n int, from, to, subject string, extra ...string) []string {
	h := []string{
		"Return-Path: <" + addrOf(from) + ">",
		fmt.Sprintf("Received: from mx.example.net (mx.example.net [192.0.2.%d])\r\n\tby pop.example.org with ESMTPS id S%04d\r\n\tfor <alice@example.org>; %s", 10+n, n, date(n)),
		"From: " + from,
		"To: " + to,
		"Subject: " + subject,
		"Date: " + date(n),
		fmt.Sprintf("Message-ID: <sample-%02d.%d@example.net>", n, 20260302+n),
	}
	return append(h, extra...)
}

func addrOf(from string) string {
	if i := strings.Index(from, "<"); i >= 0 {
		return strings.Trim(from[i:], "<>")
	}
	return from
}

func msg(header []string, body ...string) string {
	return crlf(append(append(header, ""), body...)...)
}

func wrap76(s string) []string {
	var out []string
	for len(s) > 76 {
		out = append(out, s[:76])
		s = s[76:]
	}
	return append(out, s)
}

func b64(b []byte) []string { return wrap76(base64.StdEncoding.EncodeToString(b)) }

func qp(s string) string {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	return strings.ReplaceAll(strings.ReplaceAll(b.String(), "\r\n", "\n"), "\n", "\r\n")
}

func pngBytes() []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 48, 48))
	r := rand.New(rand.NewPCG(4, 2))
	for y := 0; y < 48; y++ {
		for x := 0; x < 48; x++ {
			img.Set(x, y, color.NRGBA{uint8(x * 5), uint8(y * 5), uint8(r.IntN(256)), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		log.Fatal(err)
	}
	return b.Bytes()
}

func pdfLike() []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
	b.WriteString("2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n3 0 obj\n<< /Length 2048 >>\nstream\n")
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 2048; i++ {
		b.WriteByte(byte(r.IntN(256)))
	}
	b.WriteString("\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
	return b.Bytes()
}
