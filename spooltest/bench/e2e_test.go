//go:build unix

package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"example.org/popspool/spooltest/dovecot"
	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/postfix"
)

// BenchmarkEndToEnd moves a mailbox from a private Dovecot (POP3) into a
// private Postfix's Maildirs (SMTP) and reports the wall time from the
// client's start until the last message is in the Maildir:
//
//	EndToEnd/<size>x<count>/<transport>/<client>
//
// with workloads of POPSPOOL_BENCH_N (default 1000) messages of 10 KB and
// of POPSPOOL_BENCH_N_1MB (default 200) messages of 1 MB, transports plain (USER/PASS on the plain port,
// allow_plaintext) and tls (implicit TLS, the test certificate as CA), and
// clients popspool (fetchd, rewrited and deliverd as processes on a fresh
// spool, target smtp://postfix) and fetchmail (Debian's, stock, one run
// with nokeep fetchall). Filling the mailbox and the checks are not timed.
//
// Every run checks that each message arrived exactly once (by its
// X-Bench-Id header, and whole: its last line is intact) and that the
// POP3 mailbox is empty afterwards; a run that loses or duplicates mail
// fails. One "e2e:" line per run gives the figures, one per popspool run
// where its time went (from the daemons' logs), and one per transport the
// ratio of the two clients.
//
// Per workload it also runs the ceiling, postfix-alone: Postfix's
// smtp-source (1 and 4 sessions) sends the workload straight to the same
// Postfix, the most any SMTP client gets through it here, with a ratio
// line for popspool; and maildir: popspool with a maildir:// target
// against mpop, both plain and over POP3S into the same Maildir, with a
// ratio line.
// Each popspool line gives each daemon's CPU per message and peak RSS;
// popspool-strace runs (plain into Postfix, TLS into the Maildir) run the
// daemons under strace -c and print their system calls per message,
// fsyncs first (not a rate: ptrace slows them).
// With POPSPOOL_BENCH_DIAG=1 popspool-staged runs as well: each daemon
// alone with -once, one after the other, which gives each stage's own
// rate.
//
// It needs root, dovecot-pop3d and postfix, and for the fetchmail runs
// fetchmail; it skips (with the reason) without. docs/benchmarks.md has
// figures and how to read them.
func BenchmarkEndToEnd(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipping: needs root (the private Dovecot and Postfix masters start as root)")
	}
	dovecot.Require(b)
	postfix.Require(b)
	n := countFromEnv(b, "POPSPOOL_BENCH_N", 1000)
	big := countFromEnv(b, "POPSPOOL_BENCH_N_1MB", 200)
	r := &rig{
		bins: bins.Dir(b),
		dc:   dovecot.Start(b, map[string]string{popUser: popPass}),
		pf:   postfix.Start(b, postfix.Options{Users: []string{rcptUser}}),
	}
	r.rcpt = r.pf.Address(rcptUser)
	fetchmail, fmErr := exec.LookPath("fetchmail")
	mpop, mpopErr := exec.LookPath("mpop")
	diag := os.Getenv("POPSPOOL_BENCH_DIAG") == "1"

	for _, w := range []workload{{n: n, size: 10 << 10, label: "10KB"}, {n: big, size: 1 << 20, label: "1MB"}} {
		b.Run(fmt.Sprintf("%sx%d", w.label, w.n), func(b *testing.B) {
			for _, tr := range []string{"plain", "tls"} {
				b.Run(tr, func(b *testing.B) {
					b.Run("popspool", func(b *testing.B) { r.bench(b, w, tr, "popspool", r.popspool) })
					if tr == "plain" {
						b.Run("popspool-strace", func(b *testing.B) { r.bench(b, w, tr, "popspool-strace", r.popspoolStrace) })
					}
					if diag {
						b.Run("popspool-staged", func(b *testing.B) { r.bench(b, w, tr, "popspool-staged", r.popspoolStaged) })
					}
					b.Run("fetchmail", func(b *testing.B) {
						if fmErr != nil {
							b.Skipf("skipping: fetchmail is not installed (apt-get install fetchmail): %v", fmErr)
						}
						r.bench(b, w, tr, "fetchmail", func(b *testing.B, run *run) runStats {
							return r.fetchmail(b, run, fetchmail)
						})
						r.ratio(w, tr)
					})
				})
			}
			// The ceiling: what Postfix takes from its own load generator,
			// in the same run (issue 12 measures popspool against it).
			b.Run("postfix-alone", func(b *testing.B) {
				for _, sessions := range []int{1, 4} {
					b.Run(fmt.Sprintf("smtp-source-s%d", sessions), func(b *testing.B) { r.smtpSource(b, w, sessions) })
				}
				r.ceiling(w)
			})
			// Without a mail server: into a Maildir, popspool against mpop,
			// the tool such a user would pick instead, over POP3S.
			b.Run("maildir", func(b *testing.B) {
				for _, tr := range []string{"plain", "tls"} {
					b.Run(tr, func(b *testing.B) {
						b.Run("popspool", func(b *testing.B) { r.bench(b, w, tr, "popspool-maildir", r.popspool) })
						if tr == "tls" {
							b.Run("popspool-strace", func(b *testing.B) { r.bench(b, w, tr, "popspool-maildir-strace", r.popspoolStrace) })
						}
						b.Run("mpop", func(b *testing.B) {
							if mpopErr != nil {
								b.Skipf("skipping: mpop is not installed (apt-get install mpop): %v", mpopErr)
							}
							r.bench(b, w, tr, "mpop", func(b *testing.B, rn *run) runStats { return r.mpop(b, rn, mpop) })
							r.ratioOf(w, tr, "popspool-maildir", "mpop")
						})
					})
				}
			})
		})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lines) > 0 {
		fmt.Printf("e2e: --- all figures (%d cores; other load on the machine counts too) ---\n", numCPU())
		for _, l := range r.lines {
			fmt.Println(l)
		}
	}
}

// countFromEnv is the positive number in the environment variable name,
// or def when it is unset.
func countFromEnv(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		b.Fatalf("%s=%q: want a positive number of messages", name, s)
	}
	return v
}

const (
	popUser  = "bench"
	popPass  = "bench-pop3-secret"
	rcptUser = "alice"
)

type workload struct {
	n, size int
	label   string // "10KB"
}

// rig is what all runs share: the binaries and the two servers.
type rig struct {
	bins string
	dc   *dovecot.Dovecot
	pf   *postfix.Server
	rcpt string

	mu      sync.Mutex
	lines   []string           // every e2e: line, printed again at the end
	results map[string]float64 // "10KBx1000/tls/popspool" -> msgs/s
	costs   map[string]cost    // same keys: CPU seconds per message
}

// run is one timed pass: its mailbox content and where its files go.
type run struct {
	id        string // unique per run, the prefix of every X-Bench-Id
	client    string // popspool, popspool-maildir, fetchmail, mpop, ...
	w         workload
	transport string // plain or tls
	dir       string
	wrap      func(daemon string, argv []string) []string // harness.Options.Wrap

	start, end     time.Time
	cpu0, cpu1     cpuSample
	procs0, procs1 procTimes
}

// begin starts the clock of rn (and the benchmark timer).
func (rn *run) begin(b *testing.B) {
	rn.procs0 = readProcs()
	rn.cpu0 = readCPU()
	b.StartTimer()
	rn.start = time.Now()
}

// finish stops them: the last message is in the Maildir.
func (rn *run) finish(b *testing.B) {
	rn.end = time.Now()
	b.StopTimer()
	rn.cpu1 = readCPU()
	rn.procs1 = readProcs()
}

// runStats is what a client run returns besides the wall time.
type runStats struct {
	notes   string  // extra figures for the summary line
	daemons float64 // CPU seconds of popspool's three daemons, 0 for others
}

// cost is the CPU a client's run took per message: the whole machine's
// busy time (every process and the kernel, whoever they were for) and,
// of that, popspool's three daemons'.
type cost struct{ machine, daemons float64 }

var bins = harness.Binaries{Prefix: "popspool-bench-bin-"}

func TestMain(m *testing.M) {
	code := m.Run()
	bins.Remove()
	os.Exit(code)
}

// bench runs client b.N times on fresh mail and reports the figures.
func (r *rig) bench(b *testing.B, w workload, transport, client string, do func(*testing.B, *run) runStats) {
	var total time.Duration
	var notes string
	var spent cost
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rn := r.fill(b, w, transport, client, i)
		st := do(b, rn) // calls rn.begin and rn.finish around what is timed
		b.StopTimer()
		total += rn.end.Sub(rn.start)
		r.verify(b, rn)
		roots := map[int]bool{os.Getpid(): true, postfixMaster(r.pf.Dir): true}
		r.say("e2e: %s %s msgs=%d size=%s cpu during the run: %s",
			client, transport, w.n, w.label, cpuReport(rn.procs0, rn.procs1, rn.cpu0, rn.cpu1, roots, 12))
		notes = st.notes
		spent.machine += float64(rn.cpu1.busy-rn.cpu0.busy) / userHZ
		spent.daemons += st.daemons
		if busy, ok := busyPercent(rn.cpu0, rn.cpu1); ok {
			notes += fmt.Sprintf(" machine-busy=%.0f%%", busy)
		}
	}
	per := total / time.Duration(b.N)
	msgs := float64(w.n) / per.Seconds()
	mbs := float64(w.n*w.size) / 1e6 / per.Seconds()
	b.ReportMetric(msgs, "msgs/s")
	b.ReportMetric(mbs, "MB/s")
	runs := ""
	if b.N > 1 {
		runs = fmt.Sprintf(" runs=%d(mean)", b.N)
	}
	r.say("e2e: %s %s msgs=%d size=%s %.2fs %.0f msgs/s %.2f MB/s%s verified=exactly-once%s",
		client, transport, w.n, w.label, per.Seconds(), msgs, mbs, runs, notes)
	r.mu.Lock()
	if r.results == nil {
		r.results = map[string]float64{}
	}
	r.results[key(w, transport, client)] = msgs
	if r.costs == nil {
		r.costs = map[string]cost{}
	}
	moved := float64(w.n * b.N)
	r.costs[key(w, transport, client)] = cost{machine: spent.machine / moved, daemons: spent.daemons / moved}
	r.mu.Unlock()
}

func key(w workload, transport, client string) string {
	return fmt.Sprintf("%sx%d/%s/%s", w.label, w.n, transport, client)
}

// ratio prints popspool's rate over fetchmail's for one workload and
// transport, when both ran.
func (r *rig) ratio(w workload, transport string) { r.ratioOf(w, transport, "popspool", "fetchmail") }

// ratioOf prints client a's rate over client b's, when both ran.
func (r *rig) ratioOf(w workload, transport, a, b string) {
	r.mu.Lock()
	p, okP := r.results[key(w, transport, a)]
	f, okF := r.results[key(w, transport, b)]
	r.mu.Unlock()
	if okP && okF && f > 0 {
		r.say("e2e: ratio %s msgs=%d size=%s %s %.1f msgs/s / %s %.1f msgs/s = %.2fx",
			transport, w.n, w.label, a, p, b, f, p/f)
	}
}

// ceiling prints popspool's rate into Postfix over what smtp-source -s 4
// got through the same Postfix, for each transport that ran.
func (r *rig) ceiling(w workload) {
	for _, tr := range []string{"plain", "tls"} {
		r.ratioOf(w, tr, "popspool", "smtp-source-s4")
		r.bound(w, tr)
	}
}

// bound prints how fast popspool's run into Postfix could have gone on
// this machine's cores had they been busy all the time, from the CPU the
// run took per message (the whole machine's: Dovecot serving the mail,
// the daemons, Postfix taking it, the kernel writing it back), and how
// fast without popspool's daemons' share, against the ceiling. A ratio
// the second figure does not reach is out of reach here whatever
// popspool does.
func (r *rig) bound(w workload, transport string) {
	r.mu.Lock()
	c, okC := r.costs[key(w, transport, "popspool")]
	top, okT := r.results[key(w, transport, "smtp-source-s4")]
	r.mu.Unlock()
	if !okC || !okT || c.machine <= c.daemons || top <= 0 {
		return
	}
	cores := float64(numCPU())
	all, rest := cores/c.machine, cores/(c.machine-c.daemons)
	r.say("e2e: cpu bound %s msgs=%d size=%s machine %.2f ms/msg (daemons %.2f): %d cores fully busy allow %.0f msgs/s = %.2fx smtp-source-s4; without the daemons %.0f msgs/s = %.2fx",
		transport, w.n, w.label, c.machine*1000, c.daemons*1000, int(cores), all, all/top, rest, rest/top)
}

func (r *rig) say(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	fmt.Println(line)
	r.mu.Lock()
	r.lines = append(r.lines, line)
	r.mu.Unlock()
}

// fill empties the recipient's Maildir and puts w's messages into the
// POP3 mailbox, which must be empty.
func (r *rig) fill(b *testing.B, w workload, transport, client string, iter int) *run {
	b.Helper()
	if left := r.dc.Count(b, popUser); left != 0 {
		b.Fatalf("the POP3 mailbox still holds %d messages from an earlier run", left)
	}
	r.waitQueueEmpty(b, 30*time.Second)
	md := r.pf.MaildirOf(r.rcpt)
	for _, sub := range []string{"new", "cur", "tmp"} {
		ents, err := os.ReadDir(filepath.Join(md, sub))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			b.Fatal(err)
		}
		for _, e := range ents {
			if err := os.Remove(filepath.Join(md, sub, e.Name())); err != nil {
				b.Fatal(err)
			}
		}
	}
	rn := &run{
		id:     fmt.Sprintf("%s-%s-%s-%d-%d", w.label, transport, client, iter, time.Now().UnixNano()),
		client: client, w: w, transport: transport, dir: b.TempDir(),
	}
	for i := 0; i < w.n; i++ {
		r.dc.Put(b, popUser, message(rn.id, i, w.size))
	}
	return rn
}

// message returns a message of exactly size octets (CRLF lines of at most
// 78), headed X-Bench-Id: <run>-<i> and ending in a line naming it.
func message(runID string, i, size int) []byte {
	id := benchID(runID, i)
	var b bytes.Buffer
	fmt.Fprintf(&b, "Return-Path: <sender@example.net>\r\nFrom: Bench Sender <sender@example.net>\r\n"+
		"To: Office <%s@isp.example>\r\nSubject: benchmark message %d\r\nDate: %s\r\n"+
		"Message-ID: <%s@bench.example>\r\nX-Bench-Id: %s\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n",
		popUser, i, time.Now().Format(time.RFC1123Z), id, id)
	end := "end of " + id + "\r\n"
	line := "The quick brown fox jumps over the lazy dog, then back again, 0123456789 ok.\r\n"
	for b.Len()+len(line)+len(end) <= size {
		b.WriteString(line)
	}
	if pad := size - b.Len() - len(end); pad >= 3 {
		b.WriteString(strings.Repeat("z", pad-2) + "\r\n")
	}
	b.WriteString(end)
	return b.Bytes()
}

func benchID(runID string, i int) string { return fmt.Sprintf("%s-%05d", runID, i) }

// waitDelivered waits until the Maildir holds at least n messages and
// Postfix's queue is empty. check is called on each round and may end the
// wait with an error (a client that died).
//
// Listing a Maildir of 1000 files costs about half a millisecond of CPU,
// which the servers and clients measured need: it looks every 5 ms at
// first, then every 1/200 of the time so far (at most every 100 ms), so
// the end is seen within 0.5% and the looking costs little.
func (r *rig) waitDelivered(n int, limit time.Duration, check func() error) error {
	md := r.pf.MaildirOf(r.rcpt)
	start := time.Now()
	deadline := start.Add(limit)
	for {
		got := 0
		for _, sub := range []string{"new", "cur"} {
			got += countDir(filepath.Join(md, sub)) // missing before the first delivery
		}
		if got >= n && r.pf.Queued() == 0 {
			return nil
		}
		if err := check(); err != nil {
			return fmt.Errorf("%d of %d in the Maildir: %w", got, n, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d in the Maildir after %v, %d in Postfix's queue", got, n, limit, r.pf.Queued())
		}
		time.Sleep(min(max(time.Since(start)/200, 5*time.Millisecond), 100*time.Millisecond))
	}
}

// countDir counts the names in dir (0 if it is missing), unsorted.
func countDir(dir string) int {
	f, err := os.Open(dir)
	if err != nil {
		return 0
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	return len(names)
}

func (r *rig) waitQueueEmpty(b *testing.B, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for r.pf.Queued() != 0 {
		if time.Now().After(deadline) {
			b.Fatalf("postfix: %d messages still queued after %v", r.pf.Queued(), limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// limitFor is how long a run may take before it counts as stuck: far
// more than fetchmail's 40 ms a message.
func limitFor(w workload) time.Duration {
	return 2*time.Minute + time.Duration(w.n)*250*time.Millisecond + time.Duration(w.n*w.size/(1<<20))*time.Second
}

// verify checks, after the run, that every message of rn is in the
// Maildir exactly once and whole, that nothing else is, and that the POP3
// mailbox is empty.
func (r *rig) verify(b *testing.B, rn *run) {
	b.Helper()
	r.waitQueueEmpty(b, 30*time.Second)
	msgs, err := r.pf.Messages(r.rcpt)
	if err != nil {
		b.Fatal(err)
	}
	seen := map[string]int{}
	var broken, unexpected []string
	for _, m := range msgs {
		id := postfix.Header(m.Data, "X-Bench-Id")
		if !strings.HasPrefix(id, rn.id+"-") {
			unexpected = append(unexpected, filepath.Base(m.Path)+" ("+id+")")
			continue
		}
		seen[id]++
		if !bytes.HasSuffix(m.Data, []byte("\nend of "+id+"\n")) && !bytes.HasSuffix(m.Data, []byte("\nend of "+id+"\r\n")) {
			broken = append(broken, id)
		}
	}
	var missing, dup []string
	for i := 0; i < rn.w.n; i++ {
		id := benchID(rn.id, i)
		switch c := seen[id]; {
		case c == 0:
			missing = append(missing, id)
		case c > 1:
			dup = append(dup, fmt.Sprintf("%s x%d", id, c))
		}
	}
	if len(missing)+len(dup)+len(unexpected)+len(broken) > 0 {
		b.Fatalf("NOT a figure: %d messages sent, %d files in the Maildir: %d missing %v, %d duplicated %v, %d unexpected %v, %d truncated %v",
			rn.w.n, len(msgs), len(missing), first(missing), len(dup), first(dup), len(unexpected), first(unexpected), len(broken), first(broken))
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.dc.Count(b, popUser) != 0 {
		if time.Now().After(deadline) {
			b.Fatalf("all delivered, but the POP3 mailbox still holds %d messages (nokeep)", r.dc.Count(b, popUser))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func first(s []string) []string {
	sort.Strings(s)
	if len(s) > 5 {
		return append(s[:5:5], "...")
	}
	return s
}
