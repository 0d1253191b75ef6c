// Command demo runs popspool's whole job on an embedded default: a local
// POP3 test server with the sample messages, the three daemons as real
// processes, delivery into a Maildir, and a summary of what flowed.
// `make demo` runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/samples"
)

func main() {
	bins := flag.String("bin", "", "folder with built fetchd, rewrited and deliverd (default: build them)")
	dir := flag.String("dir", "", "work folder (default: a new temporary folder, kept for inspection)")
	timeout := flag.Duration("timeout", 90*time.Second, "give up after this long")
	flag.Parse()
	if err := run(*bins, *dir, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run(bins, dir string, timeout time.Duration) error {
	var err error
	if dir == "" {
		if dir, err = os.MkdirTemp("", "popspool-demo-"); err != nil {
			return err
		}
	}
	if bins == "" {
		fmt.Println("building fetchd, rewrited, deliverd ...")
		if bins, err = harness.Build(filepath.Join(dir, "bin")); err != nil {
			return err
		}
	}
	f, err := harness.New(dir, bins, harness.Options{})
	if err != nil {
		return err
	}
	defer f.Server.Close()
	names, err := samples.WriteTo(f.Box)
	if err != nil {
		return err
	}
	fmt.Printf("POP3 test server on %s holds %d sample messages\n", serverAddr(f), len(names))
	start := time.Now()
	for _, d := range harness.Daemons {
		if err := f.Start(d); err != nil {
			return err
		}
	}
	garbage := dropGarbage(f)
	ok := harness.WaitFor(timeout, func() bool { return f.Settled() && len(delivered(f)) >= len(names) && failedCount(f) >= 1 })
	elapsed := time.Since(start)
	var stopErr error
	for _, d := range harness.Daemons {
		if err := f.Stop(d, 15*time.Second); err != nil && stopErr == nil {
			stopErr = err
		}
	}
	return report(f, names, garbage, elapsed, ok, stopErr)
}

func serverAddr(f *harness.Flow) string {
	b, _ := os.ReadFile(f.Config)
	var addr string
	for _, line := range splitLines(string(b)) {
		if _, err := fmt.Sscanf(line, "server = %q", &addr); err == nil {
			return addr
		}
	}
	return "?"
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

// dropGarbage puts a file an operator might drop by mistake into
// incoming/, to show that it lands in failed/ with a reason while the
// rest flows on.
func dropGarbage(f *harness.Flow) string {
	path := filepath.Join(f.Spool, "incoming", "not-a-message.bin")
	harness.WaitFor(10*time.Second, func() bool { _, err := os.Stat(filepath.Dir(path)); return err == nil })
	os.WriteFile(path, []byte("\x00\x01 this is not a mail message\n\xff\xfe"), 0o600)
	return path
}

func delivered(f *harness.Flow) map[string][]byte {
	m, _ := f.Delivered()
	return m
}

func failedCount(f *harness.Flow) int { return f.SpoolFiles()["failed"] }
