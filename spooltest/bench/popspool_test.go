//go:build unix

package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"example.org/popspool/spooltest/measure"

	"example.org/popspool/spooltest/harness"
)

// popspool runs the three daemons on a fresh spool until every message
// of rn is in the Maildir, then stops them and reads their logs for where
// the time went.
func (r *rig) popspool(b *testing.B, rn *run) runStats {
	f := r.flow(b, rn)
	rn.begin(b)
	for _, d := range harness.Daemons {
		if err := f.Start(d); err != nil {
			b.Fatal(err)
		}
	}
	err := r.waitDelivered(rn.w.n, limitFor(rn.w), func() error {
		for _, d := range harness.Daemons {
			if f.Exited(d) {
				return fmt.Errorf("%s exited: %v", d, f.ExitErr(d))
			}
		}
		return nil
	})
	rn.finish(b)
	peaks := peakRSS(f)
	for _, d := range harness.Daemons {
		if serr := f.Stop(d, 10*time.Second); serr != nil {
			b.Errorf("stop %s: %v", d, serr)
		}
	}
	if err != nil {
		b.Fatalf("popspool %s: %v; spool %v; log tails:\n%s", rn.transport, err, f.SpoolFiles(), logTails(f))
	}
	if left := f.SpoolFiles(); len(left) > 0 {
		b.Errorf("popspool %s: files left in the spool after delivery: %v", rn.transport, left)
	}
	st := stages(b, f, rn.start)
	r.say("e2e: popspool %s msgs=%d size=%s where the time went: %s", rn.transport, rn.w.n, rn.w.label, st.describe(rn.end.Sub(rn.start)))
	notes, daemons := cpuOf(f, rn.w.n, peaks)
	return runStats{notes: " cpu " + notes, daemons: daemons}
}

// popspoolStaged is a diagnostic: fetchd -once, then rewrited -once,
// then deliverd -once, each alone on the machine's cores, so each stage's
// time is its own and not shared with the other two.
func (r *rig) popspoolStaged(b *testing.B, rn *run) runStats {
	f := r.flow(b, rn)
	var parts []string
	rn.begin(b)
	for _, d := range harness.Daemons {
		t := time.Now()
		if err := f.Run(d, limitFor(rn.w)); err != nil {
			b.Fatalf("%s -once: %v; log tails:\n%s", d, err, logTails(f))
		}
		el := time.Since(t)
		parts = append(parts, fmt.Sprintf("%s -once %.2fs (%.0f msgs/s)", d, el.Seconds(), float64(rn.w.n)/el.Seconds()))
	}
	t := time.Now()
	if err := r.waitDelivered(rn.w.n, limitFor(rn.w), func() error { return nil }); err != nil {
		b.Fatalf("popspool-staged %s: %v", rn.transport, err)
	}
	rn.finish(b)
	parts = append(parts, fmt.Sprintf("then Postfix %.2fs", rn.end.Sub(t).Seconds()))
	if left := f.SpoolFiles(); len(left) > 0 {
		b.Errorf("popspool-staged %s: files left in the spool after delivery: %v", rn.transport, left)
	}
	r.say("e2e: popspool-staged %s msgs=%d size=%s stages alone: %s", rn.transport, rn.w.n, rn.w.label, strings.Join(parts, ", "))
	notes, daemons := cpuOf(f, rn.w.n, nil)
	return runStats{notes: " cpu " + notes, daemons: daemons}
}

// flow prepares a harness flow (fresh spool, logs) and replaces its
// config with one for the Dovecot account over rn's transport.
func (r *rig) flow(b *testing.B, rn *run) *harness.Flow {
	if rn.wrap == nil {
		rn.wrap = profileWrap(b, rn)
	}
	server := r.dc.Addr
	tlsLines := "tls = \"none\"\nallow_plaintext = true"
	if rn.transport == "tls" {
		server = r.dc.TLSAddr
		tlsLines = fmt.Sprintf("tls = \"implicit\"\nca_file = %q", r.dc.CAFile)
	}
	f, err := harness.New(rn.dir, r.bins, harness.Options{
		Target: "smtp://" + r.pf.Addr,
		Via:    func(string) string { return server }, // the harness's own POP3 server stays idle
		Wrap:   rn.wrap,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(f.Close)
	pass := filepath.Join(f.Dir, "bench.pass")
	if err := os.WriteFile(pass, []byte(popPass+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := fmt.Sprintf(`# popspool end-to-end benchmark (spooltest/bench)
spool = %q
rescan = "1s"

[log]
level = "info"

[[account]]
name = "bench"
server = %q
%s
username = %q
password_file = %q
interval = "1s"
max_size = "50MB"
deliver_to = [%q]

[deliver]
target = %q
retry = ["1s", "2s"]
`, f.Spool, server, tlsLines, popUser, pass, r.rcpt, r.target(rn))
	if err := os.WriteFile(f.Config, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	return f
}

// target is deliverd's target for rn: the Postfix, or for the Maildir
// runs the recipient's Maildir itself (the one Postfix delivers to, so the
// same checks count it).
func (r *rig) target(rn *run) string {
	if strings.HasPrefix(rn.client, "popspool-maildir") {
		return "maildir://" + filepath.Dir(r.pf.MaildirOf(r.rcpt)) + "/{user}"
	}
	return "smtp://" + r.pf.Addr
}

func logTails(f *harness.Flow) string {
	var s strings.Builder
	for _, d := range harness.Daemons {
		data, _ := os.ReadFile(filepath.Join(f.Logs, d+".log"))
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		fmt.Fprintf(&s, "--- %s\n%s\n", d, data)
	}
	return s.String()
}

// cpuOf is each daemon's CPU time over its run of n messages (user+system,
// each, and per message), its peak resident memory from peaks when known,
// and the three daemons' CPU per message; and that sum in seconds.
func cpuOf(f *harness.Flow, n int, peaks map[string]int64) (string, float64) {
	var parts []string
	sum := 0.0
	for _, d := range harness.Daemons {
		if ru, ok := f.Usage(d).(*syscall.Rusage); ok {
			sum += rusageSeconds(ru)
			rss := ""
			if kib, ok := peaks[d]; ok {
				rss = fmt.Sprintf(", peak RSS %.1f MB", float64(kib)/1024)
			}
			parts = append(parts, fmt.Sprintf("%s=%.2fs(user %.2f sys %.2f, %.2f ms/msg%s)", d, rusageSeconds(ru),
				time.Duration(ru.Utime.Nano()).Seconds(), time.Duration(ru.Stime.Nano()).Seconds(),
				rusageSeconds(ru)*1000/float64(n), rss))
		}
	}
	return fmt.Sprintf("%s; 3 daemons %.2f ms/msg", strings.Join(parts, " "), sum*1000/float64(n)), sum
}

// peakRSS reads each running daemon's VmHWM (KiB) from /proc. Not
// ru_maxrss: a child started by fork and exec keeps the parent's high
// mark, and the benchmark's own process holds the workload's messages.
func peakRSS(f *harness.Flow) map[string]int64 {
	out := map[string]int64{}
	if f.Opt.Wrap != nil {
		return out // the process is the wrapper's
	}
	for _, d := range harness.Daemons {
		if pid := f.Pid(d); pid != 0 {
			if hwm := measure.VmHWM(pid); hwm > 0 {
				out[d] = hwm >> 10
			}
		}
	}
	return out
}

func rusageSeconds(ru *syscall.Rusage) float64 {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// stageTimes are the daemons' event times of one run, by spool file id.
type stageTimes struct {
	fetched, routed, delivered map[string]time.Duration // since the start
}

// stages reads events 2002 (fetched), 3001 (routed) and 4001 (delivered)
// from the daemons' JSON logs.
func stages(b *testing.B, f *harness.Flow, start time.Time) stageTimes {
	st := stageTimes{fetched: map[string]time.Duration{}, routed: map[string]time.Duration{}, delivered: map[string]time.Duration{}}
	want := map[int]map[string]time.Duration{2002: st.fetched, 3001: st.routed, 4001: st.delivered}
	for _, d := range harness.Daemons {
		file, err := os.Open(filepath.Join(f.Logs, d+".log"))
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(file)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var l struct {
				Event int       `json:"event"`
				Time  time.Time `json:"time"`
				ID    string    `json:"id"`
			}
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			if m := want[l.Event]; m != nil && l.ID != "" {
				m[l.ID] = l.Time.Sub(start)
			}
		}
		file.Close()
	}
	return st
}

// describe says, in seconds from the start, when each stage handled its
// first and last message and at what rate, how long messages waited
// between stages, and how long Postfix took after the last 250.
func (st stageTimes) describe(total time.Duration) string {
	var s strings.Builder
	var lastDelivered time.Duration
	for _, stage := range []struct {
		name string
		m    map[string]time.Duration
	}{{"fetched", st.fetched}, {"routed", st.routed}, {"delivered", st.delivered}} {
		lo, hi := span(stage.m)
		rate := "-" // too short a span to tell
		if hi-lo >= 50*time.Millisecond && len(stage.m) > 1 {
			rate = fmt.Sprintf("%.0f/s", float64(len(stage.m)-1)/(hi-lo).Seconds())
		}
		fmt.Fprintf(&s, "%s %d %.2f-%.2fs (%s); ", stage.name, len(stage.m), lo.Seconds(), hi.Seconds(), rate)
		if stage.name == "delivered" {
			lastDelivered = hi
		}
	}
	fmt.Fprintf(&s, "wait fetched->routed %s; routed->delivered %s; ",
		lag(st.fetched, st.routed), lag(st.routed, st.delivered))
	// deliverd logs 4001 after its ledger's fsync, Postfix may be faster
	fmt.Fprintf(&s, "last 250 -> all in Maildir %.2fs", max(0, total-lastDelivered).Seconds())
	return s.String()
}

func span(m map[string]time.Duration) (lo, hi time.Duration) {
	first := true
	for _, t := range m {
		if first || t < lo {
			lo = t
		}
		if first || t > hi {
			hi = t
		}
		first = false
	}
	return lo, hi
}

// lag is the distribution of to[id]-from[id] over the ids in both.
func lag(from, to map[string]time.Duration) string {
	var d []time.Duration
	for id, t := range from {
		if u, ok := to[id]; ok {
			d = append(d, u-t)
		}
	}
	if len(d) == 0 {
		return "n/a"
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	q := func(p float64) string { return ms(d[int(p*float64(len(d)-1))]) }
	return fmt.Sprintf("p50 %s p90 %s max %s", q(0.5), q(0.9), q(1))
}

func ms(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// smtpSource is the ceiling: Postfix's own load generator sends w
// straight to the Postfix (no POP3 side at all), timed until all of it is
// in the Maildir.
func (r *rig) smtpSource(b *testing.B, w workload, sessions int) {
	bin := "/usr/sbin/smtp-source"
	if _, err := os.Stat(bin); err != nil {
		b.Skipf("skipping: %s is missing (it comes with postfix)", bin)
	}
	var total time.Duration
	busy := ""
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rn := r.fill(b, workload{n: 0, size: w.size, label: w.label}, "smtp", "smtp-source", i)
		cmd := exec.Command(bin, "-s", fmt.Sprint(sessions), "-m", fmt.Sprint(w.n), "-l", fmt.Sprint(w.size),
			"-f", "sender@example.net", "-t", r.rcpt, r.pf.Addr)
		out, err := os.Create(filepath.Join(rn.dir, "smtp-source.log"))
		if err != nil {
			b.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = out, out
		rn.begin(b)
		err = cmd.Run()
		if err == nil {
			err = r.waitDelivered(w.n, limitFor(w), func() error { return nil })
		}
		rn.finish(b)
		out.Close()
		if err != nil {
			b.Fatalf("smtp-source: %v\n%s", err, fileTail(out.Name(), 2000))
		}
		if msgs, err := r.pf.Messages(r.rcpt); err != nil || len(msgs) != w.n {
			b.Fatalf("smtp-source sent %d, the Maildir holds %d (%v)", w.n, len(msgs), err)
		}
		total += rn.end.Sub(rn.start)
		roots := map[int]bool{os.Getpid(): true, postfixMaster(r.pf.Dir): true}
		r.say("e2e: postfix-alone smtp-source -s %d msgs=%d size=%s cpu during the run: %s",
			sessions, w.n, w.label, cpuReport(rn.procs0, rn.procs1, rn.cpu0, rn.cpu1, roots, 12))
		if pct, ok := busyPercent(rn.cpu0, rn.cpu1); ok {
			busy = fmt.Sprintf(" machine-busy=%.0f%%", pct)
		}
	}
	per := total / time.Duration(b.N)
	msgs, mbs := float64(w.n)/per.Seconds(), float64(w.n*w.size)/1e6/per.Seconds()
	b.ReportMetric(msgs, "msgs/s")
	b.ReportMetric(mbs, "MB/s")
	r.say("e2e: postfix-alone smtp-source -s %d msgs=%d size=%s %.2fs %.0f msgs/s %.2f MB/s (count checked)%s",
		sessions, w.n, w.label, per.Seconds(), msgs, mbs, busy)
	r.mu.Lock()
	if r.results == nil {
		r.results = map[string]float64{}
	}
	for _, tr := range []string{"plain", "tls"} { // the ceiling for either transport
		r.results[key(w, tr, fmt.Sprintf("smtp-source-s%d", sessions))] = msgs
	}
	r.mu.Unlock()
}
