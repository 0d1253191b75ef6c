package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/smtpsink"
)

// Issue 14: with log.level = "trace" the daemons, run as processes, log
// the POP3 and SMTP dialogue, the password masked and no message line.
func TestTraceLevelLogsTranscripts(t *testing.T) {
	sink, err := smtpsink.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	const pass = "e2e-trace-password"
	f, err := harness.New(t.TempDir(), bins, harness.Options{Target: "smtp://" + sink.Addr, LogLevel: "trace", Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := "From: s@example.net\r\nTo: alice@example.local\r\nSubject: traced\r\n\r\nthe private body\r\n"
	if err := os.WriteFile(filepath.Join(f.Box, "1.eml"), []byte(m), 0o600); err != nil {
		t.Fatal(err)
	}
	startAll(t, f)
	if !harness.WaitFor(60*time.Second, func() bool { return sink.Count() == 1 && f.Settled() }) {
		t.Fatalf("%d of 1 delivered, spool %v", sink.Count(), f.SpoolFiles())
	}
	for _, d := range harness.Daemons {
		if err := f.Stop(d, 10*time.Second); err != nil {
			t.Errorf("stop %s: %v", d, err)
		}
	}
	for d, want := range map[string][]string{
		"fetchd":   {"C USER demo@isp.example", "C PASS ****", "C UIDL", "C RETR 1", "S [RETR 1 body: ", "C DELE 1", "C QUIT"},
		"deliverd": {"C EHLO ", "C MAIL FROM:<", "C RCPT TO:<alice@example.local>", "C DATA", "C [message body: ", "C QUIT"},
		"rewrited": nil,
	} {
		b, err := os.ReadFile(filepath.Join(f.Logs, d+".log"))
		if err != nil {
			t.Fatal(err)
		}
		got := transcriptOf(string(b))
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s transcript lacks %q:\n%s", d, w, got)
			}
		}
		if want == nil && got != "" {
			t.Errorf("%s logs a transcript:\n%s", d, got)
		}
		if strings.Contains(string(b), pass) || strings.Contains(string(b), "the private body") {
			t.Errorf("%s log holds the password or the body:\n%s", d, tail(b, 3000))
		}
	}
}

// transcriptOf returns the transcript lines of a daemon's log, "C line".
func transcriptOf(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		var f map[string]any
		if json.Unmarshal([]byte(l), &f) == nil && f["message"] == "transcript" {
			dir, _ := f["dir"].(string)
			line, _ := f["line"].(string)
			out = append(out, dir+" "+line)
		}
	}
	return strings.Join(out, "\n")
}
