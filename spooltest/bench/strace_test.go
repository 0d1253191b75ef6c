//go:build linux

package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"example.org/popspool/spooltest/harness"
)

// traced are the system calls the strace pass counts: the durability
// calls the issue bounds (fsync and its kin), the file calls around them
// (and those Go's os.OpenFile adds to each open: fcntl, epoll_ctl), and
// the Go runtime's wakeups.
var traced = []string{
	"fsync", "fdatasync", "syncfs", "sync_file_range",
	"openat", "close", "rename", "renameat", "renameat2", "unlink", "unlinkat", "link", "linkat",
	"utimensat", "copy_file_range", "read", "write", "pread64", "pwrite64", "lseek",
	"newfstatat", "fstat", "getdents64", "fcntl", "epoll_ctl",
	"futex", "nanosleep", "epoll_pwait",
}

// durable are the calls counted as "fsyncs" in the per-message total;
// sync_file_range (a writeback hint for big files, no barrier) is listed
// but not counted.
var durable = []string{"fsync", "fdatasync", "syncfs"}

// popspoolStrace is one more popspool run (into Postfix, or into the
// Maildir for a "popspool-maildir-strace" client) with each daemon under
// strace -f -c: not a rate (ptrace slows every traced call), but what
// each daemon asks of the kernel per message, the figures
// docs/benchmarks.md reports. Without strace it skips.
//
// With POPSPOOL_BENCH_COUNT=perf the calls are counted by perf stat on
// the kernel's syscall tracepoints instead: a daemon then runs at nearly
// its own speed, so batches are as large as in an untraced run (under
// strace they grow, and the calls per message shrink).
func (r *rig) popspoolStrace(b *testing.B, rn *run) runStats {
	counter, read := "strace", readStraceSummary
	if os.Getenv("POPSPOOL_BENCH_COUNT") == "perf" {
		counter, read = "perf", readPerfStat
	}
	tool, err := exec.LookPath(counter)
	if err != nil {
		b.Skipf("skipping: %s is not installed: %v", counter, err)
	}
	out := b.TempDir()
	rn.wrap = func(daemon string, argv []string) []string {
		file := filepath.Join(out, daemon+".calls")
		if counter == "perf" {
			var events []string
			for _, c := range traced {
				events = append(events, "syscalls:sys_enter_"+tracepoint(c))
			}
			return append([]string{tool, "stat", "-x,", "-o", file, "-e", strings.Join(events, ","), "--"}, argv...)
		}
		return append([]string{tool, "-f", "-c", "-o", file, "-e", "trace=" + strings.Join(traced, ",")}, argv...)
	}
	st := r.popspool(b, rn)
	var parts []string
	total := 0.0
	for _, d := range harness.Daemons {
		calls, err := read(filepath.Join(out, d+".calls"))
		if err != nil {
			b.Fatalf("strace summary of %s: %v", d, err)
		}
		syncs := 0
		for _, c := range durable {
			syncs += calls[c]
		}
		total += float64(syncs) / float64(rn.w.n)
		parts = append(parts, fmt.Sprintf("%s: %s", d, perMessage(calls, rn.w.n)))
	}
	r.say("e2e: syscalls per message (%s) %s %s msgs=%d size=%s fsyncs(all kinds, 3 daemons)=%.2f; %s",
		counter, rn.client, rn.transport, rn.w.n, rn.w.label, total, strings.Join(parts, "; "))
	return st
}

// perMessage formats calls divided by n, the durable ones first, then the
// others by name; calls under 0.01 a message are left out.
func perMessage(calls map[string]int, n int) string {
	var names []string
	for c := range calls {
		names = append(names, c)
	}
	sort.Slice(names, func(i, j int) bool {
		di, dj := isDurable(names[i]), isDurable(names[j])
		if di != dj {
			return di
		}
		return names[i] < names[j]
	})
	var parts []string
	for _, c := range names {
		if v := float64(calls[c]) / float64(n); v >= 0.01 {
			parts = append(parts, fmt.Sprintf("%s %.2f", c, v))
		}
	}
	return strings.Join(parts, " ")
}

func isDurable(c string) bool {
	for _, d := range durable {
		if c == d {
			return true
		}
	}
	return false
}

// tracepoint is the name of call's syscalls:sys_enter_ tracepoint: the
// kernel's own name, where strace's differs (fstat is the kernel's newfstat).
func tracepoint(call string) string {
	if call == "fstat" {
		return "newfstat"
	}
	return call
}

// callOf is tracepoint's inverse.
func callOf(tp string) string {
	if tp == "newfstat" {
		return "fstat"
	}
	return tp
}

// readPerfStat reads perf stat -x, output: count,unit,event,... lines for
// the syscalls:sys_enter_<name> events; name -> calls.
func readPerfStat(path string) (map[string]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	calls := map[string]int{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 || !strings.HasPrefix(f[2], "syscalls:sys_enter_") {
			continue
		}
		n, err := strconv.Atoi(f[0])
		if err != nil {
			continue // "<not counted>"
		}
		if n > 0 {
			calls[callOf(strings.TrimPrefix(f[2], "syscalls:sys_enter_"))] = n
		}
	}
	if len(calls) == 0 {
		return nil, fmt.Errorf("%s: no system calls counted", path)
	}
	return calls, nil
}

// readStraceSummary reads strace -c's table: syscall name -> calls.
//
//	% time     seconds  usecs/call     calls    errors syscall
//	------ ----------- ----------- --------- --------- ----------------
//	 61.20    0.412345         412      1000           fsync
func readStraceSummary(path string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	calls := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || fields[0] == "%" || strings.HasPrefix(fields[0], "-") {
			continue
		}
		name := fields[len(fields)-1]
		if name == "total" {
			continue
		}
		n, err := strconv.Atoi(fields[3])
		if err != nil {
			return nil, fmt.Errorf("%s: line %q: %w", path, sc.Text(), err)
		}
		calls[name] += n
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(calls) == 0 {
		return nil, fmt.Errorf("%s: no system calls counted", path)
	}
	return calls, nil
}
