// Command benchranges reads the output of several runs of the end-to-end
// benchmark (spooltest/bench BenchmarkEndToEnd) and prints, for each
// figure, the range over the runs: the ratios to the peers and to the
// ceiling, the ceiling's CPU bound, each tool's rate, popspool's CPU a message and, from a traced
// run (popspool-strace), its fsyncs a message. A run's figures are the
// lines after its "e2e: --- all figures" marker.
//
//	for i in 1 2 3; do go test -run '^$' -bench EndToEnd -benchtime 1x ./spooltest/bench; done | go run ./spooltest/cmd/benchranges
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var (
	ratioLine = regexp.MustCompile(`^e2e: ratio (\S+) msgs=(\d+) size=(\S+) (\S+) [\d.]+ msgs/s / (\S+) [\d.]+ msgs/s = ([\d.]+)x`)
	rateLine  = regexp.MustCompile(`^e2e: (\S+) (\S+) msgs=(\d+) size=(\S+) [\d.]+s ([\d.]+) msgs/s`)
	ceiling   = regexp.MustCompile(`^e2e: postfix-alone (smtp-source -s \d) msgs=(\d+) size=(\S+) [\d.]+s ([\d.]+) msgs/s`)
	syncsLine = regexp.MustCompile(`^e2e: syscalls per message \(\S+\) (\S+) (\S+) msgs=(\d+) size=(\S+) fsyncs\(all kinds, 3 daemons\)=([\d.]+)`)
	boundLine = regexp.MustCompile(`^e2e: cpu bound (\S+) msgs=(\d+) size=(\S+) .* = ([\d.]+)x smtp-source-s4; without the daemons [\d.]+ msgs/s = ([\d.]+)x`)
	cpuLine   = regexp.MustCompile(`3 daemons ([\d.]+) ms/msg`)
	daemonCPU = regexp.MustCompile(`(fetchd|rewrited|deliverd)=[\d.]+s\(user [\d.]+ sys [\d.]+, ([\d.]+) ms/msg`)
)

// figures holds each named figure's values, one per run that had it.
type figures map[string][]float64

func (f figures) add(name string, v float64) { f[name] = append(f[name], v) }

func main() {
	f, runs, err := read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchranges:", err)
		os.Exit(1)
	}
	if runs == 0 {
		fmt.Fprintln(os.Stderr, `benchranges: no "e2e: --- all figures" line in the input`)
		os.Exit(1)
	}
	fmt.Printf("%d runs\n", runs)
	names := make([]string, 0, len(f))
	for n := range f {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("%-70s %s\n", n, span(f[n]))
	}
}

// read collects the figures of every run in r.
func read(r io.Reader) (figures, int, error) {
	f := figures{}
	runs, inRun := 0, false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "e2e: --- all figures"):
			runs++
			inRun = true
		case strings.HasPrefix(line, "goos:") || strings.HasPrefix(line, "PASS") || strings.HasPrefix(line, "FAIL"):
			inRun = false
		case inRun:
			parse(f, line)
		}
	}
	return f, runs, sc.Err()
}

func parse(f figures, line string) {
	if m := ratioLine.FindStringSubmatch(line); m != nil {
		f.add(fmt.Sprintf("ratio %s %sx%s %s / %s", m[1], m[3], m[2], m[4], m[5]), num(m[6]))
		return
	}
	if m := syncsLine.FindStringSubmatch(line); m != nil {
		f.add(fmt.Sprintf("fsyncs/msg %sx%s %s %s", m[4], m[3], m[2], m[1]), num(m[5]))
		return
	}
	if m := boundLine.FindStringSubmatch(line); m != nil {
		f.add(fmt.Sprintf("cpu bound %s %sx%s / smtp-source-s4", m[1], m[3], m[2]), num(m[4]))
		f.add(fmt.Sprintf("cpu bound without the daemons %s %sx%s / smtp-source-s4", m[1], m[3], m[2]), num(m[5]))
		return
	}
	if m := ceiling.FindStringSubmatch(line); m != nil {
		f.add(fmt.Sprintf("msgs/s %sx%s postfix-alone %s", m[3], m[2], m[1]), num(m[4]))
		return
	}
	m := rateLine.FindStringSubmatch(line)
	if m == nil || !strings.Contains(line, "verified=") || strings.HasSuffix(m[1], "-strace") {
		return // a traced run's rate and CPU are the tracer's
	}
	key := fmt.Sprintf("%sx%s %s %s", m[4], m[3], m[2], m[1])
	f.add("msgs/s "+key, num(m[5]))
	if c := cpuLine.FindStringSubmatch(line); c != nil {
		f.add("cpu ms/msg 3 daemons "+key, num(c[1]))
	}
	for _, d := range daemonCPU.FindAllStringSubmatch(line, -1) {
		f.add("cpu ms/msg "+d[1]+" "+key, num(d[2]))
	}
}

func num(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64) // the patterns match numbers only
	return v
}

// span is "min-max (n)" or the one value.
func span(v []float64) string {
	lo, hi := v[0], v[0]
	for _, x := range v[1:] {
		lo, hi = min(lo, x), max(hi, x)
	}
	if lo == hi {
		return fmt.Sprintf("%s (%d)", short(lo), len(v))
	}
	return fmt.Sprintf("%s-%s (%d)", short(lo), short(hi), len(v))
}

func short(x float64) string {
	if x >= 100 {
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}
