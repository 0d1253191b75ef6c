package harness

import (
	"os"
	"strconv"
	"sync"
	"testing"
)

// Binaries builds the three daemons once per test binary, the first time
// a test asks, into a temporary folder that Remove deletes (from
// TestMain, after the tests).
type Binaries struct {
	Prefix string // of the temporary folder's name
	Tags   []string

	once sync.Once
	dir  string
	err  error
}

// Dir returns the folder holding the built daemons.
func (d *Binaries) Dir(tb testing.TB) string {
	d.once.Do(func() {
		dir, err := os.MkdirTemp("", d.Prefix)
		if err != nil {
			d.err = err
			return
		}
		d.dir = dir
		_, d.err = Build(dir, d.Tags...)
	})
	if d.err != nil {
		tb.Fatalf("build the daemons: %v", d.err)
	}
	return d.dir
}

// Remove deletes what Dir built, if anything.
func (d *Binaries) Remove() {
	if d.dir != "" {
		os.RemoveAll(d.dir)
	}
}

// EnvInt is the integer in the environment variable name, or def when it
// is unset; a value that is not a number fails the test.
func EnvInt(tb testing.TB, name string, def int64) int64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return n
}
