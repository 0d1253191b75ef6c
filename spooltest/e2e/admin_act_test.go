package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.org/popspool/spooltest/harness"
)

// The operator's commands act on a running pipeline by the daemons' own
// renames: a message held in pickup/ is not delivered while deliverd runs,
// and goes once released; retrieve-now is taken by the running fetchd;
// every action is in status/actions.log.
func TestAdminCommandsOnARunningFlow(t *testing.T) {
	f := newFlow(t)
	want := sampleBytes(t, f)
	for _, d := range []string{"fetchd", "rewrited"} {
		if err := f.Start(d); err != nil {
			t.Fatal(err)
		}
	}
	pickup := filepath.Join(f.Spool, "pickup")
	if !harness.WaitFor(60*time.Second, func() bool {
		n, _ := filepath.Glob(filepath.Join(pickup, "*.eml"))
		return len(n) == len(want)
	}) {
		t.Fatalf("not all in pickup/: %v", f.SpoolFiles())
	}
	names, _ := filepath.Glob(filepath.Join(pickup, "*.eml"))
	id := strings.TrimSuffix(filepath.Base(names[0]), ".eml")
	if out, err := runAdmin(f, "deliverd", "hold", id); err != nil || !strings.Contains(out, id+": held in pickup/") {
		t.Fatalf("hold: %v\n%s", err, out)
	}
	if err := f.Start("deliverd"); err != nil {
		t.Fatal(err)
	}
	if !harness.WaitFor(60*time.Second, func() bool { got, _ := f.Delivered(); return len(got) == len(want)-1 }) {
		t.Fatalf("the others were not delivered: %v", f.SpoolFiles())
	}
	time.Sleep(1500 * time.Millisecond) // a rescan or two of deliverd
	if got, _ := f.Delivered(); len(got) != len(want)-1 {
		t.Fatalf("the held message was delivered: %d", len(got))
	}
	if _, err := os.Stat(filepath.Join(pickup, ".hold-"+id+".eml")); err != nil {
		t.Fatalf("held file: %v", err)
	}
	if out, err := runAdmin(f, "fetchd", "release", id); err != nil || !strings.Contains(out, id+": released in pickup/") {
		t.Fatalf("release: %v\n%s", err, out)
	}
	waitDelivered(t, f, len(want), 30*time.Second)
	if out, err := runAdmin(f, "rewrited", "retrieve-now", f.Opt.Account); err != nil || !strings.Contains(out, "fetchd took the request") {
		t.Fatalf("retrieve-now: %v\n%s", err, out)
	}
	for _, d := range harness.Daemons {
		f.Stop(d, 10*time.Second)
	}
	checkExactlyOnce(t, f, want)
	log, _ := os.ReadFile(filepath.Join(f.Spool, "status", "actions.log"))
	for _, w := range []string{`"event":1031,"action":"hold","id":"` + id, `"action":"release"`, `"event":1033`} {
		if !strings.Contains(string(log), w) {
			t.Errorf("no %s in status/actions.log:\n%s", w, log)
		}
	}
}

func runAdmin(f *harness.Flow, daemon string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(bins, daemon), append([]string{args[0], "-config", f.Config}, args[1:]...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
