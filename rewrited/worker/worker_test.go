package worker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/spool"
)

func setup(t testing.TB, accounts ...string) *Worker {
	t.Helper()
	s, err := spool.Open(t.TempDir(), "rewrited", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cfg := &config.Config{Rescan: config.Duration(time.Second)}
	for _, a := range accounts {
		cfg.Account = append(cfg.Account, config.Account{Name: a, Routing: config.Routing{DeliverTo: []string{a + "@contoso.local", "Boss@contoso.local", "boss@contoso.local"}}})
	}
	cfg.Filter.MaxHops = 3
	return New(s, cfg, zerolog.Nop())
}

func drop(t testing.TB, w *Worker, name, content string) {
	t.Helper()
	p := filepath.Join(w.S.Dir(spool.Incoming), name)
	os.WriteFile(p, []byte(content), 0o600)
	old := time.Now().Add(-time.Minute)
	os.Chtimes(p, old, old)
}

func only(t *testing.T, w *Worker, folder string) string {
	t.Helper()
	entries, _ := os.ReadDir(w.S.Dir(folder))
	if len(entries) != 1 {
		t.Fatalf("%s holds %d files", folder, len(entries))
	}
	b, _ := os.ReadFile(filepath.Join(w.S.Dir(folder), entries[0].Name()))
	return string(b)
}

const msg = "Received: from pop.example.net\r\nX-Popspool-Account: office\r\nReturn-Path: <bob@example.net>\r\nFrom: Bob <bob@example.net>\r\nSubject: hi\r\n\r\nbody\n.line\r\n\x00bin\r\n"

func TestRoutesSingleDrop(t *testing.T) {
	w := setup(t, "office", "shop")
	id := spool.NewID()
	drop(t, w, id+".eml", msg)
	if err := w.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	got := only(t, w, spool.Pickup)
	want := "X-Sender: <bob@example.net>\r\nX-Receiver: <office@contoso.local>\r\nX-Receiver: <Boss@contoso.local>\r\n" + msg
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	if _, err := os.Stat(filepath.Join(w.S.Dir(spool.Pickup), id+".eml")); err != nil {
		t.Fatal("id not kept:", err)
	}
}

func TestIdempotentOnEnvelopedFile(t *testing.T) {
	w := setup(t, "office")
	drop(t, w, spool.NewID()+".eml", "X-Sender: <old@x>\r\nX-Receiver: <old@x>\r\nX-Popspool-Failed: 3003 old reason\r\n"+msg)
	w.Run(context.Background(), true)
	got := only(t, w, spool.Pickup)
	if strings.Contains(got, "old") || !strings.HasSuffix(got, msg) {
		t.Fatalf("old envelope kept: %q", got)
	}
}

func TestBadFilesGoToFailedAndOthersFlow(t *testing.T) {
	w := setup(t, "office", "shop")
	drop(t, w, "garbage.bin", "\x89PNG\r\n\x1a\n\x00\x00 random garbage without a header")
	drop(t, w, "empty.eml", "")
	drop(t, w, "mbox.eml", "From bob@example.net Mon Jan  1 00:00:00 2024\nSubject: x\n\nb\n")
	drop(t, w, "noaccount.eml", "Subject: x\r\n\r\nb\r\n")
	drop(t, w, "zz-good.eml", msg)
	if err := w.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if got := only(t, w, spool.Pickup); !strings.HasSuffix(got, msg) {
		t.Fatalf("good message: %q", got)
	}
	entries, _ := os.ReadDir(w.S.Dir(spool.Failed))
	if len(entries) != 4 {
		t.Fatalf("failed/ holds %d files", len(entries))
	}
	reasons := ""
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(w.S.Dir(spool.Failed), e.Name()))
		line, rest, _ := strings.Cut(string(b), "\r\n")
		if !strings.HasPrefix(line, "X-Popspool-Failed: ") {
			t.Fatalf("no reason in %q", b)
		}
		reasons += line + "\n"
		_ = rest
	}
	for _, want := range []string{"3007 the file holds no message", "3003 unreadable header", "3004 no known X-Popspool-Account"} {
		if !strings.Contains(reasons, want) {
			t.Errorf("no %q in\n%s", want, reasons)
		}
	}
}

// An original claimed by rewrited whose routed version went on (deliverd
// took it on: in hand, deferred, bounced; or an operator moved it from
// failed/ back to incoming/) is removed at start, not routed a second
// time.
func TestRecoverDropsOriginalRoutedBefore(t *testing.T) {
	// incoming: an operator moved the routed version (from failed/) back
	// before rewrited restarted; it is routed from there, once.
	for _, dir := range []string{"deferred", "badmail", "tmp/deliverd", "pickup", "incoming"} {
		w := setup(t, "office")
		id := spool.NewID()
		name := id + ".eml"
		if dir == "deferred" {
			name = id + "-1.eml" // a same-id copy's name
		}
		os.WriteFile(filepath.Join(w.S.TmpDir(), id+".eml"), []byte(msg), 0o600)
		os.WriteFile(filepath.Join(w.S.Root, dir, name), []byte("X-Sender: <a@x>\r\n"+msg), 0o600)
		if err := w.Recover(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(w.S.TmpDir(), id+".eml")); err == nil {
			t.Errorf("%s: the original is still in tmp/rewrited", dir)
		}
		if entries, _ := os.ReadDir(w.S.Dir(spool.Pickup)); len(entries) != btoi(dir == "pickup") {
			t.Errorf("%s: routed again: pickup/ holds %d files", dir, len(entries))
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestRecoverRoutesClaimedFile(t *testing.T) {
	w := setup(t, "office")
	id := spool.NewID()
	os.WriteFile(filepath.Join(w.S.TmpDir(), id+".eml"), []byte(msg), 0o600)
	os.WriteFile(filepath.Join(w.S.TmpDir(), id+".new"), []byte("half"), 0o600)
	if err := w.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := only(t, w, spool.Pickup); !strings.HasSuffix(got, msg) {
		t.Fatalf("got %q", got)
	}
	if left, _ := os.ReadDir(w.S.TmpDir()); len(left) != 1 { // .lock
		t.Fatalf("tmp not empty: %v", left)
	}
}
