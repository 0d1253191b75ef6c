package samples

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const wantCount = 24

func TestCount(t *testing.T) {
	if n := len(Names()); n != wantCount {
		t.Fatalf("%d samples, want %d", n, wantCount)
	}
}

// TestLineEndings: exactly one sample uses bare LF throughout; all others
// use CRLF only (no bare LF, no bare CR).
func TestLineEndings(t *testing.T) {
	var bareLF []string
	for _, name := range Names() {
		b := mustRead(t, name)
		crlf := bytes.Count(b, []byte("\r\n"))
		lf, cr := bytes.Count(b, []byte("\n")), bytes.Count(b, []byte("\r"))
		switch {
		case cr == 0 && lf > 0:
			bareLF = append(bareLF, name)
		case crlf != lf || crlf != cr:
			t.Errorf("%s: mixed line endings: %d CRLF, %d LF, %d CR", name, crlf, lf, cr)
		}
	}
	if len(bareLF) != 1 || !strings.Contains(bareLF[0], "bare-lf") {
		t.Errorf("bare-LF samples = %q, want exactly the broken-MIME one", bareLF)
	}
}

// TestHeaders: every sample has a distinct Subject and, all but one, a
// distinct Message-ID.
func TestHeaders(t *testing.T) {
	subjects, ids := map[string]string{}, map[string]string{}
	var noID []string
	for _, name := range Names() {
		h := header(mustRead(t, name))
		subj, id := h["subject"], h["message-id"]
		if subj == "" || subjects[subj] != "" {
			t.Errorf("%s: Subject %q missing or also in %s", name, subj, subjects[subj])
		}
		subjects[subj] = name
		if id == "" {
			noID = append(noID, name)
			continue
		}
		if ids[id] != "" {
			t.Errorf("%s: Message-ID %q also in %s", name, id, ids[id])
		}
		ids[id] = name
	}
	if len(noID) != 1 {
		t.Errorf("samples without Message-ID: %q, want exactly one", noID)
	}
}

// header returns the top-level header fields, unfolded, keyed by lower-case
// name; a repeated field keeps its first value.
func header(msg []byte) map[string]string {
	text := strings.ReplaceAll(string(msg), "\r\n", "\n")
	head, _, _ := strings.Cut(text, "\n\n")
	head = strings.NewReplacer("\n ", " ", "\n\t", " ").Replace(head)
	fields := map[string]string{}
	for _, line := range strings.Split(head, "\n") {
		k, v, ok := strings.Cut(line, ":")
		k = strings.ToLower(k)
		if _, seen := fields[k]; ok && !seen {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}

func TestWriteToIsByteIdentical(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "maildrop")
	names, err := WriteTo(dir)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if !slices.Equal(names, Names()) {
		t.Fatalf("WriteTo returned %q", names)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != wantCount {
		t.Fatalf("dir holds %d entries (%v), want %d and no temp files", len(ents), err, wantCount)
	}
	for _, name := range names {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, mustRead(t, name)) {
			t.Errorf("%s: written copy differs (%v)", name, err)
		}
	}
}

// TestSpecialCases pins the properties the end-to-end tests rely on.
func TestSpecialCases(t *testing.T) {
	checks := map[string]func([]byte) bool{
		"06-long-lines.eml": func(b []byte) bool {
			return hasLineLen(b, 2000) && hasLineLen(b, 20000)
		},
		"07-dot-lines.eml": func(b []byte) bool {
			return bytes.Contains(b, []byte("\r\n.\r\n")) && bytes.Contains(b, []byte("\r\n..\r\n"))
		},
		"08-no-trailing-newline.eml":     func(b []byte) bool { return !bytes.HasSuffix(b, []byte("\n")) },
		"14-nul-and-8bit-header.eml":     func(b []byte) bool { return bytes.IndexByte(b, 0) > 0 },
		"21-dot-final-line.eml":          func(b []byte) bool { return bytes.HasSuffix(b, []byte("\r\n.\r\n")) },
		"22-dot-no-trailing-newline.eml": func(b []byte) bool { return bytes.HasSuffix(b, []byte("\r\n.")) },
		"12-bounce-report.eml": func(b []byte) bool {
			return bytes.HasPrefix(b, []byte("Return-Path: <>\r\n")) && bytes.Contains(b, []byte("multipart/report"))
		},
	}
	for name, ok := range checks {
		if !ok(mustRead(t, name)) {
			t.Errorf("%s lacks the property it is here for", name)
		}
	}
}

func hasLineLen(b []byte, n int) bool {
	for _, l := range bytes.Split(b, []byte("\r\n")) {
		if len(l) == n {
			return true
		}
	}
	return false
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := Read(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
