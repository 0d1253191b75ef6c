package worker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.org/popspool/rewrited/filter"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/spool"
)

func multiDropWorker(t *testing.T) *Worker {
	w := setup(t, "box")
	w.Cfg.Account[0].Routing = config.Routing{LocalDomains: []string{"contoso.local"}, EnvelopeHeaders: config.DefaultEnvelopeHeaders}
	return w
}

func TestExplainSaysWhyAndChangesNothing(t *testing.T) {
	w := multiDropWorker(t)
	id := spool.NewID()
	drop(t, w, id+".eml", "X-Popspool-Account: box\r\nDelivered-To: isp-box@isp.example\r\nX-Original-To: alice@contoso.local\r\nFrom: b@x.example\r\n\r\nhi\r\n")
	path := filepath.Join(w.S.Dir(spool.Incoming), id+".eml")
	before, _ := os.ReadFile(path)
	var out bytes.Buffer
	if err := w.Explain(context.Background(), path, false, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Delivered-To: isp-box@isp.example: not in local_domains, dropped",
		"X-Original-To: alice@contoso.local: local recipient",
		"outcome: pickup/ with\n  X-Sender: <b@x.example>\n  X-Receiver: <alice@contoso.local>",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain lacks %q:\n%s", want, out.String())
		}
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("explain changed the file")
	}
}

func TestLoopGuardAndTag(t *testing.T) {
	w := setup(t, "office")
	w.Filter = filter.New(config.Filter{MaxHops: 2, Command: []string{"sh", "-c", "grep -q SPAM && echo 9.0/5.0 && exit 1; exit 0"},
		Timeout: config.Duration(5e9), Action: "tag", TagHeader: "X-Spam-Flag"})
	loop := strings.Repeat("Received: from a by b (popspool fetchd; account office; uidl 1) with POP3 id X; date\r\n", 3) + "Subject: loop\r\n\r\nb\r\n"
	drop(t, w, "a.eml", loop)
	drop(t, w, "b.eml", "Subject: SPAM\r\n\r\nbuy\r\n")
	drop(t, w, "c.eml", "Subject: ham\r\n\r\nhello\r\n")
	w.Run(context.Background(), true)
	failed, _ := os.ReadDir(w.S.Dir(spool.Failed))
	if len(failed) != 1 {
		t.Fatalf("failed/ holds %d", len(failed))
	}
	b, _ := os.ReadFile(filepath.Join(w.S.Dir(spool.Failed), failed[0].Name()))
	if !strings.HasPrefix(string(b), "X-Popspool-Failed: 3009 mail loop") {
		t.Fatalf("loop: %q", b)
	}
	picked, _ := os.ReadDir(w.S.Dir(spool.Pickup))
	tagged := 0
	for _, e := range picked {
		b, _ := os.ReadFile(filepath.Join(w.S.Dir(spool.Pickup), e.Name()))
		if strings.Contains(string(b), "X-Spam-Flag: 9.0/5.0\r\nSubject: SPAM") {
			tagged++
		}
	}
	if len(picked) != 2 || tagged != 1 {
		t.Fatalf("pickup %d, tagged %d", len(picked), tagged)
	}
}

func TestPoisonAmongHundred(t *testing.T) {
	w := setup(t, "office")
	for i := 0; i < 100; i++ {
		drop(t, w, fmt.Sprintf("good%03d.eml", i), fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i))
		if i == 50 {
			drop(t, w, "poison.eml", "\x00\x00\x00 Subject without colon\r\n\x7fELF")
		}
	}
	if err := w.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	picked, _ := os.ReadDir(w.S.Dir(spool.Pickup))
	failed, _ := os.ReadDir(w.S.Dir(spool.Failed))
	if len(picked) != 100 || len(failed) != 1 {
		t.Fatalf("pickup %d, failed %d", len(picked), len(failed))
	}
}
