package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/samples"
)

func report(f *harness.Flow, names []string, garbage string, elapsed time.Duration, settled bool, stopErr error) error {
	sum, err := f.Summarize()
	if err != nil {
		return err
	}
	var want [][]byte
	for _, n := range names {
		b, _ := samples.Read(n)
		want = append(want, b)
	}
	same, missing, dup, strange, err := f.Check(want)
	if err != nil {
		return err
	}
	files := f.SpoolFiles()
	fmt.Printf("\npopspool demo: %d messages in %.1fs\n", len(names), elapsed.Seconds())
	fmt.Printf("  fetched    %3d  fetchd: POP3 mailbox -> spool/incoming (server now holds %d)\n", sum.Fetched, f.Server.Stats().Left)
	fmt.Printf("  routed     %3d  rewrited: incoming -> pickup\n", sum.Routed)
	fmt.Printf("  failed     %3d  rewrited: -> spool/failed (the garbage file dropped by hand)\n", sum.Failed)
	fmt.Printf("  delivered  %3d  deliverd: pickup -> Maildir\n", sum.Delivered)
	fmt.Printf("  deferred   %3d  badmail %d\n", sum.Deferred, sum.Badmail)
	fmt.Printf("  check: %d/%d byte-identical in the Maildir, %d missing, %d duplicated, %d unexpected\n", same, len(names), missing, dup, strange)
	fmt.Printf("\n  Maildir  %s\n  spool    %s\n  config   %s\n  logs     %s\n", filepath.Join(f.UserMaildir(), "new"), f.Spool, f.Config, f.Logs)
	if reason := failedReason(f); reason != "" {
		fmt.Printf("  failed/  %s\n", reason)
	}
	bin := filepath.Join(f.Bins(), "fetchd")
	fmt.Printf("\n  look at it as an operator would (docs/operations.md):\n    %s status -config %s\n    %s queue -config %s\n    %s show -config %s ID\n",
		bin, f.Config, bin, f.Config, bin, f.Config)
	var problems []string
	if !settled {
		problems = append(problems, "the flow did not settle in time")
	}
	if same != len(names) || dup+missing+strange > 0 {
		problems = append(problems, "the Maildir does not hold every sample exactly once")
	}
	if files["failed"] != 1 || garbage == "" {
		problems = append(problems, fmt.Sprintf("failed/ holds %d files, want the 1 garbage file", files["failed"]))
	}
	if stopErr != nil {
		problems = append(problems, "stopping: "+stopErr.Error())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	fmt.Println("\ndemo OK")
	return nil
}

// failedReason returns the X-Popspool-Failed line of the first file in
// failed/.
func failedReason(f *harness.Flow) string {
	dir := filepath.Join(f.Spool, "failed")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		line, _, _ := strings.Cut(string(b), "\r\n")
		return e.Name() + ": " + line
	}
	return ""
}
