package fetch

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.org/popspool/fetchd/pop3"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/spooltest/dovecot"
)

const (
	tracePass  = "Tr4ce-pass-word"
	traceToken = "ya29.trace-token-abcdefghijklmnopqrstuvwxyz"
)

// transcriptRig is a rig against a fakePOP that offers every SASL
// mechanism fetchd knows and echoes what the client sends at login, with
// the account logging in by method and fetchd logging at level.
func transcriptRig(t *testing.T, method, level string) (*rig, *fakePOP) {
	t.Helper()
	msgs := []fakeMsg{fakeMessage("uid-1", "first secret subject"), fakeMessage("uid-2", "second")}
	p := startFakePOP(t, msgs...)
	p.capa = []string{"SASL PLAIN LOGIN XOAUTH2 OAUTHBEARER"}
	p.echo = true
	r := &rig{want: map[string][]byte{}}
	for _, m := range msgs {
		r.want[m.uid] = stuffless(m.data)
	}
	dir := t.TempDir()
	a := configAccount(p.addr())
	a.Auth = method
	if method == "xoauth2" || method == "oauthbearer" {
		a.TokenFile = filepath.Join(dir, "token")
		os.WriteFile(a.TokenFile, []byte(traceToken+"\n"), 0o600)
	}
	r.setup(t, dir, a, tracePass)
	log, err := event.NewLogger(r.log, "fetchd", level, "json")
	if err != nil {
		t.Fatal(err)
	}
	r.f.Log = log
	return r, p
}

// transcriptLines returns the transcript in the log as "C line" and
// "S line", checking the fields of each.
func transcriptLines(t *testing.T, log string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		var f map[string]any
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if f["message"] != "transcript" {
			continue
		}
		if f["level"] != "trace" || f["account"] != "office" || f["session"] == nil || f["event"] != nil {
			t.Errorf("transcript line %s: want level trace, account, session, no event", l)
		}
		out = append(out, f["dir"].(string)+" "+f["line"].(string))
	}
	return out
}

// TestTranscriptMasksEveryLogin: with level trace the log holds the whole
// dialogue (greeting, login, LIST, UIDL, RETR, DELE, QUIT and the replies),
// the message bodies only as notes of their size, and for every login
// method neither the password or token nor the APOP digest nor any SASL
// payload, not even where the server echoes them.
func TestTranscriptMasksEveryLogin(t *testing.T) {
	for _, tc := range []struct{ method, login, echo string }{
		{"user", "C PASS ****", "S +OK logged in with ****\n"},
		{"apop", "C APOP u ****", "S +OK logged in with u ****\n"},
		{"plain", "C AUTH PLAIN ****", "S +OK logged in with **** = ?u?****\n"},
		{"login", "C AUTH LOGIN", "S +OK logged in with **** = ****\n"},
		{"xoauth2", "C AUTH XOAUTH2 ****", "S +OK logged in with **** = user=u?auth=Bearer ****??\n"},
		{"oauthbearer", "C AUTH OAUTHBEARER ****", "?auth=Bearer ****??\n"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			r, p := transcriptRig(t, tc.method, "trace")
			if _, err := r.poll(t); err != nil {
				t.Fatalf("poll: %v\n%s", err, r.log)
			}
			r.check(t)
			if left := p.left(); len(left) != 0 {
				t.Errorf("server still has %v", left)
			}
			log := r.log.String()
			got := strings.Join(transcriptLines(t, log), "\n")
			for _, want := range []string{
				"S +OK fake POP3 ready <1.2@fake>", "C CAPA", "S SASL PLAIN LOGIN XOAUTH2 OAUTHBEARER",
				tc.login, tc.echo,
				"C LIST", "S 1 ", "C UIDL", "S 1 uid-1", "S 2 uid-2",
				"C RETR 1", "S [RETR 1 body: ", "C RETR 2",
				"C DELE 1", "C DELE 2", "C QUIT", "S +OK bye",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("transcript lacks %q:\n%s", want, got)
				}
			}
			if tc.method == "login" && !strings.Contains(got, "S + VXNlcm5hbWU6\nC ****\nS + UGFzc3dvcmQ6\nC ****") {
				t.Errorf("AUTH LOGIN's challenges and masked answers not in the transcript:\n%s", got)
			}
			for _, leak := range secretForms() {
				if strings.Contains(log, leak) {
					t.Errorf("the log holds %q:\n%s", leak, got)
				}
			}
			if strings.Contains(log, "first secret subject") || strings.Contains(log, "body of") {
				t.Errorf("the log holds a message:\n%s", got)
			}
		})
	}
}

// secretForms are the password and the token as they are, in base64 and
// inside the SASL payloads, as a server could echo them.
func secretForms() []string {
	b64 := base64.StdEncoding.EncodeToString
	return []string{
		tracePass, b64([]byte(tracePass)), b64([]byte("\x00u\x00" + tracePass)),
		traceToken, b64([]byte(traceToken)), b64([]byte("user=u\x01auth=Bearer " + traceToken + "\x01\x01"))[:40],
	}
}

// TestTranscriptOffBelowTrace: at level debug there is no transcript.
func TestTranscriptOffBelowTrace(t *testing.T) {
	r, _ := transcriptRig(t, "user", "debug")
	if _, err := r.poll(t); err != nil {
		t.Fatal(err)
	}
	r.check(t)
	log := r.log.String()
	if lines := transcriptLines(t, log); len(lines) != 0 || strings.Contains(log, "RETR") {
		t.Errorf("transcript at level debug:\n%s", log)
	}
}

// TestDovecotTranscript: the transcript of real Dovecot sessions over
// STLS, one per login method. The first puts more messages than a listing
// traces, so the UIDL listing ends in a note counting the rest.
func TestDovecotTranscript(t *testing.T) {
	token := strings.Repeat("t0ken", 60) // 300 octets: the AUTH line would pass 255, so a continuation line carries it
	dc := dovecot.StartWith(t, map[string]string{dcUser: dcPass}, dovecot.Options{OAuth2URL: introspection(t, token)})
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)
	b64 := base64.StdEncoding.EncodeToString
	for i, tc := range []struct{ method, login string }{
		{"user", "C USER office\nS +OK\nC PASS ****\nS +OK Logged in."},
		{"apop", "C APOP office ****\nS +OK Logged in."},
		{"plain", "C AUTH PLAIN ****\nS +OK Logged in."},
		{"login", "C AUTH LOGIN\nS + VXNlcm5hbWU6\nC ****\nS + UGFzc3dvcmQ6\nC ****\nS +OK Logged in."},
		{"xoauth2", "C AUTH XOAUTH2\nS + \nC ****\nS +OK Logged in."},
		{"oauthbearer", "C AUTH OAUTHBEARER\nS + \nC ****\nS +OK Logged in."},
	} {
		t.Run(tc.method, func(t *testing.T) {
			n := 1
			if i == 0 {
				n = pop3.TraceListingLines + 20
			}
			for j := range n {
				dc.Put(t, dcUser, []byte(fmt.Sprintf("Subject: private %d\r\n\r\nhello %d\r\n", j, j)))
			}
			r := &rig{}
			a := config.Account{TLS: "starttls", Server: dc.Addr, CAFile: dc.CAFile, Username: dcUser}
			a.Auth = tc.method
			r.setup(t, t.TempDir(), a, dcPass)
			if a := &r.cfg.Account[0]; a.OAuth() {
				a.PasswordFile, a.TokenFile = "", tokenFile
			}
			log, err := event.NewLogger(r.log, "fetchd", "trace", "json")
			if err != nil {
				t.Fatal(err)
			}
			r.f.Log = log
			if st, err := r.poll(t); err != nil || st.Fetched != n {
				t.Fatalf("poll %+v %v\n%s", st, err, r.log)
			}
			got := strings.Join(transcriptLines(t, r.log.String()), "\n")
			want := []string{"S +OK Dovecot (Debian) ready.", "C STLS", "S +OK Begin TLS negotiation now.\nC [TLS handshake done, TLS 1.3]\nC CAPA", tc.login,
				"C UIDL", "C RETR 1", "S [RETR 1 body: ", "C DELE 1", "C QUIT", "S +OK Logging out, messages deleted."}
			if i == 0 {
				want = append(want, "S [UIDL: 20 more listing lines, not traced]", "S [LIST: 20 more listing lines, not traced]")
			}
			for _, w := range want {
				if !strings.Contains(got, w) {
					t.Errorf("transcript lacks %q:\n%s", w, got)
				}
			}
			for _, leak := range []string{dcPass, b64([]byte(dcPass)), b64([]byte("\x00office\x00" + dcPass)), token[:40], "private", "hello"} {
				if strings.Contains(r.log.String(), leak) {
					t.Errorf("the log holds %q:\n%s", leak, got)
				}
			}
		})
	}
}

// TestCheckTranscript: "fetchd check" at level trace logs the dialogue of
// its steps, STLS and STAT included, with the password masked.
func TestCheckTranscript(t *testing.T) {
	dc := dovecot.Start(t, map[string]string{dcUser: dcPass})
	r := &rig{}
	r.setup(t, t.TempDir(), config.Account{TLS: "starttls", Server: dc.Addr, CAFile: dc.CAFile, Username: dcUser}, dcPass)
	var logged logBuf
	log, err := event.NewLogger(&logged, "fetchd", "trace", "json")
	if err != nil {
		t.Fatal(err)
	}
	if ok, out := runCheckLogged(t, &r.cfg.Account[0], log); !ok {
		t.Fatalf("check failed:\n%s", out)
	}
	got := strings.Join(transcriptLines(t, logged.String()), "\n")
	for _, w := range []string{"C STLS", "C CAPA", "C USER office", "C PASS ****", "C STAT", "S +OK 0 0", "C QUIT"} {
		if !strings.Contains(got, w) {
			t.Errorf("transcript lacks %q:\n%s", w, got)
		}
	}
	if strings.Contains(logged.String(), dcPass) {
		t.Errorf("the log holds the password:\n%s", got)
	}
}
