//go:build unix

package bench

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// profileWrap, with POPSPOOL_BENCH_PROFILE=<dir>, runs each daemon of a
// popspool run under `perf record -g` into <dir>/<client>-<transport>-<daemon>.data,
// with a copy of the daemon's binary beside it (the benchmark's own build
// is removed at the end, and Go binaries carry no build id perf could
// cache): `perf report -i X.data --symfs` is not needed, the copy is what
// ran. nil when the variable is unset or perf is missing.
func profileWrap(b *testing.B, rn *run) func(string, []string) []string {
	dir := os.Getenv("POPSPOOL_BENCH_PROFILE")
	if dir == "" {
		return nil
	}
	perf, err := exec.LookPath("perf")
	if err != nil {
		b.Logf("POPSPOOL_BENCH_PROFILE: perf is not installed: %v", err)
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	return func(daemon string, argv []string) []string {
		prefix := filepath.Join(dir, rn.client+"-"+rn.transport+"-"+daemon)
		if err := copyFile(argv[0], prefix); err != nil {
			b.Fatalf("copy %s for its profile: %v", argv[0], err)
		}
		return append([]string{perf, "record", "-g", "-F", "2000", "-o", prefix + ".data", "--", prefix}, argv[1:]...)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
