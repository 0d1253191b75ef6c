package spool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkDurability measures the ways of making a batch of 10 KiB files
// durable and renamed into another folder, on the filesystem of TMPDIR
// (docs/design-notes.md, "Batch durability"): per file write, fsync,
// rename, folder fsync; per file fsync with one folder fsync for the
// batch (today's Batch); the batch written, then one syncfs(2); fdatasync
// of every file of the batch issued together; sync_file_range(WRITE) for
// each file, then one syncfs. Each reports wall and CPU time per file.
func BenchmarkDurability(b *testing.B) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 640)
	for _, n := range []int{1, 32} {
		for _, m := range durabilityMethods {
			if n == 1 && m.name != "syncfs" && m.name != "fsync-each" {
				continue
			}
			b.Run(fmt.Sprintf("%s/batch-%d", m.name, n), func(b *testing.B) {
				src, dst := filepath.Join(b.TempDir(), "tmp"), filepath.Join(b.TempDir(), "in")
				must(b, os.Mkdir(src, 0o700), os.Mkdir(dst, 0o700))
				var ru0, ru1 syscall.Rusage
				syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
				start := time.Now()
				files := 0
				for files < b.N {
					k := min(n, b.N-files)
					m.run(b, src, dst, files, k, body)
					files += k
				}
				took := time.Since(start)
				syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
				cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
				b.ReportMetric(float64(took.Microseconds())/float64(files), "µs/file")
				b.ReportMetric(float64(cpu.Microseconds())/float64(files), "cpu-µs/file")
			})
		}
	}
}

type method struct {
	name string
	run  func(b *testing.B, src, dst string, first, n int, body []byte)
}

var durabilityMethods = []method{
	{"per-file-dirsync", func(b *testing.B, src, dst string, first, n int, body []byte) {
		for i := range n {
			f := writeOne(b, src, first+i, body)
			must(b, f.Sync(), f.Close(), rename(src, dst, first+i), syncDir(dst), syncDir(src))
		}
	}},
	{"fsync-each", func(b *testing.B, src, dst string, first, n int, body []byte) {
		for i := range n {
			f := writeOne(b, src, first+i, body)
			must(b, f.Sync(), f.Close())
		}
		renameAll(b, src, dst, first, n)
	}},
	{"syncfs", func(b *testing.B, src, dst string, first, n int, body []byte) {
		anchor := mustOpenDir(b, src)
		for i := range n {
			must(b, writeOne(b, src, first+i, body).Close())
		}
		must(b, unix.Syncfs(int(anchor.Fd())), anchor.Close())
		renameAll(b, src, dst, first, n)
	}},
	{"fdatasync-together", func(b *testing.B, src, dst string, first, n int, body []byte) {
		fs := make([]*os.File, n)
		for i := range n {
			fs[i] = writeOne(b, src, first+i, body)
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, f := range fs {
			wg.Go(func() { errs[i] = unix.Fdatasync(int(f.Fd())) })
		}
		wg.Wait()
		for i, f := range fs {
			must(b, errs[i], f.Close())
		}
		renameAll(b, src, dst, first, n)
	}},
	{"sync_file_range+syncfs", func(b *testing.B, src, dst string, first, n int, body []byte) {
		anchor := mustOpenDir(b, src)
		for i := range n {
			f := writeOne(b, src, first+i, body)
			must(b, unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE), f.Close())
		}
		must(b, unix.Syncfs(int(anchor.Fd())), anchor.Close())
		renameAll(b, src, dst, first, n)
	}},
}

func writeOne(b *testing.B, dir string, i int, body []byte) *os.File {
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(i)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(body); err != nil {
		b.Fatal(err)
	}
	return f
}

func rename(src, dst string, i int) error {
	return renameNoReplace(filepath.Join(src, fmt.Sprint(i)), filepath.Join(dst, fmt.Sprint(i)))
}

// renameAll is the batch's rename pass and its two folder fsyncs.
func renameAll(b *testing.B, src, dst string, first, n int) {
	for i := range n {
		must(b, rename(src, dst, first+i))
	}
	must(b, syncDir(dst), syncDir(src))
}

func mustOpenDir(b *testing.B, dir string) *os.File {
	d, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func must(b *testing.B, errs ...error) {
	b.Helper()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}
