//go:build unix

package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
)

// Where the CPU went during a run, from /proc (Linux; elsewhere the
// figures are left out): the whole machine's busy share, and the CPU time
// of the processes of this benchmark (its own children, such as the
// daemons, Dovecot and fetchmail, and the Postfix master's) by command.
// Others may share the machine, so their share is shown as well.

// userHZ is the unit of /proc's CPU times: USER_HZ, 100 on Linux.
const userHZ = 100

// cpuSample is the first line of /proc/stat: jiffies of all cores.
type cpuSample struct{ busy, total uint64 }

func readCPU() cpuSample {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return cpuSample{}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return cpuSample{}
	}
	fields := strings.Fields(sc.Text())
	var s cpuSample
	for i, v := range fields[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		s.total += n
		if i != 3 && i != 4 { // idle, iowait
			s.busy += n
		}
	}
	return s
}

// busyPercent is the share of all cores' time that was busy between a
// and b (everything on the machine, not only the benchmark); false
// without /proc/stat.
func busyPercent(a, b cpuSample) (float64, bool) {
	if b.total <= a.total {
		return 0, false
	}
	return 100 * float64(b.busy-a.busy) / float64(b.total-a.total), true
}

func numCPU() int { return runtime.NumCPU() }

// procTimes is every process's CPU time, by pid.
type procTimes map[int]procTime

type procTime struct {
	comm          string
	ppid          int
	start         uint64 // since boot: a pid and its start name one process (pids wrap fast here)
	ticks, cticks uint64 // user+system of its own; of its ended children that it reaped
}

// readProcs reads /proc/<pid>/stat of every process; nil without /proc.
func readProcs() procTimes {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := procTimes{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		s := string(data)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		f := strings.Fields(s[close+1:]) // f[0] is field 3 (state), f[1] ppid, f[11] utime (field 14)
		if len(f) < 20 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		var t [4]uint64 // utime stime cutime cstime
		for i := range t {
			t[i], _ = strconv.ParseUint(f[11+i], 10, 64)
		}
		start, _ := strconv.ParseUint(f[19], 10, 64) // field 22
		out[pid] = procTime{comm: s[open+1 : close], ppid: ppid, start: start, ticks: t[0] + t[1], cticks: t[2] + t[3]}
	}
	return out
}

// descends reports whether pid is one of roots or their descendant in p.
func (p procTimes) descends(pid int, roots map[int]bool) bool {
	for i := 0; i < 64 && pid > 1; i++ {
		if roots[pid] {
			return true
		}
		q, ok := p[pid]
		if !ok {
			return false
		}
		pid = q.ppid
	}
	return false
}

// cpuReport says which of the benchmark's processes used how much CPU
// between a and b, by command, the n biggest first (a process started in
// between counts whole; one that ended in between is counted in the
// parent that reaped it, as "parent(ended-children)"), then the kernel's
// workers, and what the rest of the machine used meanwhile.
func cpuReport(a, b procTimes, ca, cb cpuSample, roots map[int]bool, n int) string {
	if a == nil || b == nil {
		return "n/a"
	}
	by := map[string]uint64{}
	var ours, kernel uint64
	for pid, p := range b {
		d, dc := p.ticks, p.cticks
		if q, ok := a[pid]; ok && q.start == p.start && q.ticks <= p.ticks && q.cticks <= p.cticks {
			d, dc = d-q.ticks, dc-q.cticks
		}
		if strings.HasPrefix(p.comm, "kworker/") {
			kernel += d
			continue
		}
		if !b.descends(pid, roots) {
			continue
		}
		ours += d + dc
		if d > 0 {
			by[p.comm] += d
		}
		if dc > 0 {
			by[p.comm+"(ended-children)"] += dc
		}
	}
	type kv struct {
		k string
		v uint64
	}
	var all []kv
	for k, v := range by {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v || all[i].v == all[j].v && all[i].k < all[j].k })
	var parts []string
	for i, x := range all {
		if i == n {
			break
		}
		parts = append(parts, fmt.Sprintf("%s=%.2fs", x.k, float64(x.v)/userHZ))
	}
	s := fmt.Sprintf("benchmark's processes %.2fs: %s; kworker=%.2fs", float64(ours)/userHZ, strings.Join(parts, " "), float64(kernel)/userHZ)
	if busy := cb.busy - ca.busy; cb.total > ca.total && busy > ours+kernel {
		s += fmt.Sprintf("; rest of the machine %.2fs", float64(busy-ours-kernel)/userHZ)
	}
	return s
}

// postfixMaster is the pid of the Postfix master of the instance in dir
// (postfix start detaches it), 0 if unknown.
func postfixMaster(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "queue", "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
