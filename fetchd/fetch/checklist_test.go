package fetch

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// check -list says what the next poll would do with each message on the
// server, from the account's UIDL journal, and changes nothing: not the
// mailbox, not the journal, not the spool.
func TestCheckListIsADryRunOfThePoll(t *testing.T) {
	big := fakeMessage("big", "too big")
	big.data = append(big.data, bytes.Repeat([]byte("x"), 2000)...)
	big.data = append(big.data, '\r', '\n')
	r, p := newFakeRig(t, fakeMessage("a", "first"), big, fakeMessage("bad", "cannot be sent"), fakeMessage("d", "fourth"))
	a := &r.cfg.Account[0]
	a.Keep, a.MaxSize = true, 1000
	p.hook = func(_ int, cmd string) (string, hookAction) {
		if cmd == "RETR 3" {
			return "-ERR [SYS/TEMP] message unavailable\r\n", hookReply
		}
		return "", hookPass
	}
	for range attemptLimit {
		r.poll(t) // a and d fetched and kept, big left, bad failed once more each time
	}
	p.mu.Lock()
	p.msgs = append(p.msgs, fakeMessage("e", "new since"))
	p.mu.Unlock()

	journal := filepath.Join(r.s.Root, "state", "office.uidl")
	before, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	incoming, _ := os.ReadDir(filepath.Join(r.s.Root, "incoming"))
	var out bytes.Buffer
	if !CheckList(context.Background(), a, r.s.Root, &out, zerolog.Nop()) {
		t.Fatalf("check -list failed:\n%s", out.String())
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^ +1 +\d+  kept +[0-9a-f]+  fetched .* as \w+; kept on the server \(keep\)$`),
		regexp.MustCompile(`(?m)^ +2 +\d{4}  too big +[0-9a-f]+  over max_size 1000: left on the server \(event 2015\)$`),
		regexp.MustCompile(`(?m)^ +3 +\d+  set aside +[0-9a-f]+  5 failed downloads: not tried until Retrieve Now \(event 2032\)$`),
		regexp.MustCompile(`(?m)^ +4 +\d+  kept `),
		regexp.MustCompile(`(?m)^ +5 +\d+  new +[0-9a-f]+$`),
		regexp.MustCompile(`(?m)^  list: +ok 5 messages, 2 kept \(\d+ octets\), 1 too big \(\d+ octets\), 1 set aside \(\d+ octets\), 1 new \(\d+ octets\); nothing was downloaded or deleted$`),
	} {
		if !want.MatchString(out.String()) {
			t.Errorf("no %s in\n%s", want, out.String())
		}
	}
	after, _ := os.ReadFile(journal)
	incomingAfter, _ := os.ReadDir(filepath.Join(r.s.Root, "incoming"))
	if !bytes.Equal(before, after) || len(incomingAfter) != len(incoming) || len(p.left()) != 5 {
		t.Fatalf("check -list changed something: journal %d→%d bytes, incoming %d→%d, %d left on the server",
			len(before), len(after), len(incoming), len(incomingAfter), len(p.left()))
	}
	if strings.Contains(out.String(), "pw") {
		t.Fatalf("the password is in the output:\n%s", out.String())
	}

	// Without keep, what was fetched is what the next poll deletes again.
	a.Keep = false
	out.Reset()
	CheckList(context.Background(), a, r.s.Root, &out, zerolog.Nop())
	if !regexp.MustCompile(`(?m)^ +1 +\d+  fetched +[0-9a-f]+  fetched .*; deleted on the server by the next poll$`).MatchString(out.String()) {
		t.Errorf("without keep:\n%s", out.String())
	}
}
