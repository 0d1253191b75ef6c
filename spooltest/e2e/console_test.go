package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"example.org/popspool/spooltest/harness"
)

// browser returns Debian's chromium, or skips (fails, with
// POPSPOOL_REQUIRE_BROWSER=1) when there is none.
func browser(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-headless-shell", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("POPSPOOL_REQUIRE_BROWSER") == "1" {
		t.Fatal("no chromium binary, and POPSPOOL_REQUIRE_BROWSER=1 (make console-test installs it)")
	}
	t.Skip("no chromium or chromium-headless-shell binary: apt-get install chromium (or make console-test)")
	return ""
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// rewriteConfig replaces old with new in the flow's config.
func rewriteConfig(t *testing.T, f *harness.Flow, old, new string) {
	b, err := os.ReadFile(f.Config)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("config lacks %q:\n%s", old, b)
	}
	if err := os.WriteFile(f.Config, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// deferredID waits for one message in deferred/ and returns its id.
func deferredID(t *testing.T, f *harness.Flow) string {
	var id string
	if !harness.WaitFor(30*time.Second, func() bool {
		names, _ := filepath.Glob(filepath.Join(f.Spool, "deferred", "*.eml"))
		if len(names) == 1 {
			id = strings.TrimSuffix(filepath.Base(names[0]), ".eml")
		}
		return id != ""
	}) {
		t.Fatalf("no message deferred: %v", f.SpoolFiles())
	}
	return id
}

// TestConsoleRequeueInBrowser drives the console in headless chromium: a
// message deferred (the target is down) is seen on the queue page, with
// its script-laden Subject shown as text; the target is mended and the
// requeue button sends the message on to the Maildir.
func TestConsoleRequeueInBrowser(t *testing.T) {
	chrome := browser(t)
	down := freeAddr(t)
	f, err := harness.New(t.TempDir(), bins, harness.Options{Target: "smtp://" + down})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range append(harness.Daemons, "console") {
				b, _ := os.ReadFile(filepath.Join(f.Logs, d+".log"))
				t.Logf("%s log (last 3000 bytes):\n%s", d, tail(b, 3000))
			}
		}
	})
	rewriteConfig(t, f, `retry = ["1s", "2s"]`, `retry = ["1h"]`) // it stays deferred until requeued
	msg := "From: Mallory <script>alert(1)</script> <mallory@isp.example>\r\nTo: office@isp.example\r\n" +
		"Subject: <script>alert(1)</script> quarterly figures\r\nMessage-ID: <console-1@isp.example>\r\n" +
		"Date: Mon, 07 Dec 2026 02:00:00 +0000\r\n\r\nThe figures.\r\n"
	if err := os.WriteFile(filepath.Join(f.Box, "m0000.eml"), []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range harness.Daemons {
		if err := f.Start(d); err != nil {
			t.Fatal(err)
		}
	}
	id := deferredID(t, f)

	// Mend the target: deliverd again, now delivering into the Maildir.
	if err := f.Stop("deliverd", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	rewriteConfig(t, f, "smtp://"+down, "maildir://"+filepath.ToSlash(f.Mail)+"/{user}")
	if err := f.Start("deliverd"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // deliverd's recovery; the message must stay deferred (next attempt in 1h)
	if n := f.SpoolFiles()["deferred"]; n != 1 {
		t.Fatalf("deferred/ holds %d files before the requeue, want 1", n)
	}

	if !harness.WaitFor(20*time.Second, func() bool { // fetchd's status file names the account's polls
		b, _ := os.ReadFile(filepath.Join(f.Spool, "status", "fetchd.json"))
		return strings.Contains(string(b), `"last_poll"`)
	}) {
		t.Fatal("fetchd's status file never recorded a poll")
	}

	base := startConsole(t, f)
	shots := artefacts(t)
	ctx, cancel := browserContext(t, chrome)
	defer cancel()

	b := &run{t: t, ctx: ctx}
	b.do("the login form", chromedp.Navigate(base+"/queue?folder=deferred"), // no session
		chromedp.WaitVisible(chromedp.CSS("#token")))
	b.do("log in", chromedp.SendKeys(chromedp.CSS("#token"), consoleToken), chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#daemons")))
	if overview := b.text("body"); !strings.Contains(overview, "Accounts") || !strings.Contains(overview, "demo") ||
		!strings.Contains(overview, "since start)") || !strings.Contains(overview, "closed") || !strings.Contains(overview, "running") {
		t.Errorf("overview after login:\n%s", overview)
	}
	b.do("see the deferred message", chromedp.Navigate(base+"/queue?folder=deferred"),
		chromedp.WaitVisible(chromedp.CSS("#row-"+id)))
	if q := b.text("#queue"); !strings.Contains(q, "<script>alert(1)</script> quarterly figures") || !strings.Contains(q, "deferred") {
		t.Errorf("queue does not show the deferred message's Subject as text:\n%s", q)
	}
	scripts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementsByTagName("script").length`))
	if err != nil || scripts != 0 {
		t.Errorf("the page holds %d <script> elements (%v): a header was not escaped", scripts, err)
	}
	save(t, shots, "console-deferred.png", b.shot())

	b.do("show", chromedp.Navigate(base+"/show?id="+id), chromedp.WaitVisible(chromedp.CSS("#story")))
	if story := b.text("#story"); !strings.Contains(story, id) || !strings.Contains(story, "deferred") {
		t.Errorf("show page:\n%s", story)
	}

	b.do("requeue", chromedp.Navigate(base+"/queue?folder=deferred"),
		chromedp.WaitVisible(chromedp.CSS("#requeue-"+id)),
		chromedp.Click(chromedp.CSS("#requeue-"+id)),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	if flash := b.text("#flash"); !strings.Contains(flash, id+": deferred/ -> pickup/") {
		t.Errorf("flash after requeue: %q", flash)
	}
	if h := b.text("h2"); h != "Queue: deferred/" {
		t.Errorf("after requeue the page is %q, want back on the deferred queue", h)
	}
	save(t, shots, "console-requeued.png", b.shot())
	if !harness.WaitFor(30*time.Second, func() bool {
		got, _ := f.Delivered()
		return len(got) == 1 && f.SpoolFiles()["deferred"] == 0
	}) {
		t.Fatalf("the requeued message was not delivered: %v", f.SpoolFiles())
	}
	b.do("overview after delivery", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#daemons")))
	save(t, shots, "console-after.png", b.shot())
	b.do("deferred after delivery", chromedp.Navigate(base+"/queue?folder=deferred"), chromedp.WaitVisible(chromedp.CSS("#total")))
	if total := b.text("#total"); !strings.HasPrefix(total, "0 message(s)") {
		t.Errorf("deferred queue after delivery: %q", total)
	}
	rec, _ := os.ReadFile(filepath.Join(f.Spool, "status", "actions.log"))
	if !strings.Contains(string(rec), `"action":"requeue"`) || !strings.Contains(string(rec), id) {
		t.Errorf("status/actions.log lacks the requeue: %s", rec)
	}
}

// run drives the browser, failing the test at the first broken step.
type run struct {
	t   *testing.T
	ctx context.Context
}

func (r *run) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	r.t.Helper()
	if err := chromedp.Do(r.ctx, steps...); err != nil {
		r.t.Fatalf("%s: %v", what, err)
	}
}

func (r *run) text(css string) string {
	r.t.Helper()
	s, err := chromedp.Run(r.ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		r.t.Fatalf("text of %s: %v", css, err)
	}
	return s
}

func (r *run) shot() []byte {
	r.t.Helper()
	png, err := chromedp.Run(r.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		r.t.Fatalf("screenshot: %v", err)
	}
	return png
}

const consoleToken = "browser-test-token-0123456789"

// startConsole runs "deliverd console" on a free loopback port and
// returns its URL once it answers.
func startConsole(t *testing.T, f *harness.Flow) string {
	tok := filepath.Join(f.Dir, "console.token")
	if err := os.WriteFile(tok, []byte(consoleToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	log, err := os.Create(filepath.Join(f.Logs, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bins, "deliverd"), "console", "-config", f.Config, "-listen", addr, "-token-file", tok)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
	if !harness.WaitFor(15*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatal("the console did not listen")
	}
	return "http://" + addr
}

func browserContext(t *testing.T, chrome string) (context.Context, context.CancelFunc) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1400, 900), chromedp.UserDataDir(t.TempDir()))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, tcancel := context.WithTimeout(ctx, time.Minute)
	return ctx, func() { tcancel(); cancel(); acancel() }
}

// artefacts is where screenshots are kept: $POPSPOOL_ARTIFACTS, or
// nowhere.
func artefacts(t *testing.T) string {
	dir := os.Getenv("POPSPOOL_ARTIFACTS")
	if dir == "" {
		t.Log("POPSPOOL_ARTIFACTS unset: screenshots not kept")
		return ""
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func save(t *testing.T, dir, name string, png []byte) {
	if len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Errorf("%s: not a PNG (%d bytes)", name, len(png))
		return
	}
	if dir == "" {
		return
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", p, len(png))
}
