//go:build unix

package chaos

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"example.org/popspool/spooltest/faultproxy"
	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/testcert"
)

// TestChaos runs the whole pipeline under process and network chaos and
// checks the invariants (package comment), between the spooltest POP3
// server and the SMTP sink. POPSPOOL_CHAOS_N sets the number of kills
// (default 150, make chaos N=...), POPSPOOL_CHAOS_MESSAGES the mailbox
// size (default 6 per kill), POPSPOOL_SEED replays a run's decisions,
// POPSPOOL_KEEP=1 keeps its folder. TestChaosReal (real_test.go) is the
// same run between a real Dovecot and a real Postfix.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test skipped in -short mode")
	}
	runChaos(t, mode{kills: 150, sides: spooltestServers})
}

// mode is the pair of servers a chaos run goes between.
type mode struct {
	// name is "" for the spooltest servers, else it marks the figure
	// lines as servers=name.
	name  string
	kills int64 // default number of kills
	sides func(t *testing.T, env sideEnv) (pop3Side, smtpSide)
	// tls runs TLS on both legs, each behind a raw fault proxy
	// (tls_test.go).
	tls bool
}

// runChaos is one whole chaos run: the chaos, the settling, the final
// stop, the check and the figures.
func runChaos(t *testing.T, m mode) {
	r := newRun(t, m)
	start := time.Now()
	r.chaos()
	chaosTime := time.Since(start)
	r.settle()
	r.stopAll()
	r.report(chaosTime, time.Since(start))
}

// TestMain removes the daemons built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	bins.Remove()
	os.Exit(code)
}

var bins = harness.Binaries{Prefix: "popspool-chaos-bin-"}

func daemons(t *testing.T) string { return bins.Dir(t) }

// counts are the figures of a run.
type counts struct {
	kills, sigterm, stalls, exits int
	inHandshake                   int // kills while the daemon's connection was in its TLS handshake
	sigtermNetCuts                int // 4006s during a SIGTERM stop that an SMTP fault caused
	ops                           map[string]int
	sigtermMax                    time.Duration
	killedWhile                   map[string]int // "daemon\tstep" -> kills
}

// run is one chaos run. Everything but the slow copies happens in the
// test's goroutine, in the order the seeded RNG decides.
type run struct {
	t      *testing.T
	tag    string // "servers=NAME " in the figure lines, "" for the spooltest servers
	seed   int64
	rng    *rand.Rand
	n      int // kills to do
	dir    string
	f      *harness.Flow
	pop    pop3Side
	smtp   smtpSide
	faults *Faults
	// rawPOP3 and rawSMTP are the raw fault proxies of a TLS run, nil
	// otherwise.
	rawPOP3, rawSMTP *faultproxy.Raw

	staging string
	mail    [][]byte
	fed     int
	want    []Want
	garbage [][]byte
	dots    map[string][]byte
	copies  sync.WaitGroup
	copyMu  sync.Mutex
	copyErr []error

	wins    Windows
	logFrom map[string]int64     // log offset at the daemon's last start
	starts  map[string][]segment // every start of each daemon
	stalled map[string]time.Time // SIGSTOPped daemon -> when to SIGCONT it
	c       counts
	bad     []string // violations seen while running
}

func newRun(t *testing.T, md mode) *run {
	seed := harness.EnvInt(t, "POPSPOOL_SEED", time.Now().UnixNano())
	n := int(harness.EnvInt(t, "POPSPOOL_CHAOS_N", md.kills))
	m := int(harness.EnvInt(t, "POPSPOOL_CHAOS_MESSAGES", int64(6*n)))
	tag := ""
	if md.name != "" {
		tag = "servers=" + md.name + " "
	}
	fmt.Printf("chaos: %sseed=%d kills=%d messages=%d (replay: POPSPOOL_SEED=%d POPSPOOL_CHAOS_N=%d POPSPOOL_CHAOS_MESSAGES=%d)\n", tag, seed, n, m, seed, n, m)
	t.Logf("seed %d", seed)
	r := &run{t: t, tag: tag, seed: seed, rng: rand.New(rand.NewSource(seed)), n: n, faults: NewFaults(),
		dots: map[string][]byte{}, logFrom: map[string]int64{}, stalled: map[string]time.Time{}, starts: map[string][]segment{},
		c: counts{ops: map[string]int{}, killedWhile: map[string]int{}}}
	r.dir = t.TempDir()
	if os.Getenv("POPSPOOL_KEEP") != "" {
		d, err := os.MkdirTemp("", "popspool-chaos-")
		if err != nil {
			t.Fatal(err)
		}
		r.dir = d
		fmt.Printf("chaos: keeping the run's folder %s\n", d)
	}
	// An ISP's POP3 server is a slow link away, the local mail server a
	// fast one: the daemons spend their time in the protocol, where the
	// kills should land.
	r.faults.POP3Rate, r.faults.SMTPRate = 4<<20, 8<<20
	bins := daemons(t)
	env := sideEnv{faults: r.faults, seed: seed}
	if md.tls {
		cert, err := testcert.Write(r.dir)
		if err != nil {
			t.Fatal(err)
		}
		env.cert = cert
	}
	r.pop, r.smtp = md.sides(t, env)
	smtpAddr, via := r.proxies(md.tls)
	user, pass := r.pop.login()
	popTLS, popCA, popServer := r.pop.security()
	startTLS, smtpCA := r.smtp.security()
	var err error
	r.f, err = harness.New(r.dir, bins, harness.Options{
		Target: "smtp://" + smtpAddr, Via: via,
		Username: user, Password: pass, DeliverTo: r.smtp.rcpt(),
		TLS: popTLS, CAFile: popCA, ServerTLS: popServer, StartTLS: startTLS, DeliverCAFile: smtpCA,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.f.Close) // before the proxies' Close, which waits for every connection to end
	t.Cleanup(r.resumeAll)
	r.staging = filepath.Join(r.dir, "staging")
	if err := os.MkdirAll(r.staging, 0o700); err != nil {
		t.Fatal(err)
	}
	r.mail, err = harness.Generate(r.staging, m, seed)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range r.mail {
		r.want = append(r.want, Want{Name: boxName(i), Wire: harness.Wire(b)})
	}
	r.feedTo(max(1, m/10))
	for _, d := range harness.Daemons {
		r.start(d, "first start")
	}
	return r
}

// proxies puts a fault proxy in front of each server and returns the SMTP
// one's address and the harness's Via for the POP3 one: in a plain run
// the line proxies Faults drives, in a TLS run raw ones (tls_test.go),
// which need not read the protocol.
func (r *run) proxies(tls bool) (string, func(string) string) {
	if tls {
		r.rawSMTP = faultproxy.StartRaw(r.t, r.smtp.addr(), smtpPlan(r.seed, r.faults.SMTPRate))
		return r.rawSMTP.Addr, func(own string) string {
			r.rawPOP3 = faultproxy.StartRaw(r.t, r.pop.upstream(own), pop3Plan(r.seed, r.faults.POP3Rate))
			return r.rawPOP3.Addr
		}
	}
	smtp := faultproxy.StartFilter(r.t, r.smtp.addr(), r.faults.SMTPRule())
	return smtp.Addr, func(own string) string {
		return faultproxy.Start(r.t, r.pop.upstream(own), r.faults.POP3Rule()).Addr
	}
}

func boxName(i int) string { return fmt.Sprintf("m%06d.eml", i) }

// feedTo puts messages from the staging folder into the POP3 mailbox
// until k are there, in order.
func (r *run) feedTo(k int) {
	for ; r.fed < min(k, len(r.mail)); r.fed++ {
		src := filepath.Join(r.staging, fmt.Sprintf("m%04d.eml", r.fed))
		if err := r.pop.put(r.f, r.fed, src, r.mail[r.fed]); err != nil {
			r.t.Fatal(err)
		}
	}
}

// feed keeps the mailbox filling through the chaos, so the daemons have
// work when the kills come: a tenth at the start, the rest by the time
// 80% of the kills are done.
func (r *run) feed() {
	frac := 0.1 + 0.9*float64(r.c.kills)/(0.8*float64(r.n))
	r.feedTo(int(frac * float64(len(r.mail))))
}

func (r *run) logPath(d string) string { return filepath.Join(r.f.Logs, d+".log") }

func (r *run) ledger() string { return filepath.Join(r.f.Spool, "state", "deliverd.ledger") }

// segment is the part of a daemon's log one run of it wrote, and why the
// run before it ended.
type segment struct {
	from  int64
	after string // "first start", "SIGKILL", "SIGTERM", "exit"
}

// start starts daemon d; after says how its last run ended. Before
// deliverd starts (and compacts its ledger) the ledger's W records are
// counted.
func (r *run) start(d, after string) {
	if d == "deliverd" {
		if err := r.wins.Snapshot(r.ledger()); err != nil {
			r.t.Fatal(err)
		}
	}
	r.logFrom[d] = Size(r.logPath(d))
	r.starts[d] = append(r.starts[d], segment{r.logFrom[d], after})
	if err := r.f.Start(d); err != nil {
		r.t.Fatal(err)
	}
}

func (r *run) pick() string { return harness.Daemons[r.rng.Intn(len(harness.Daemons))] }

func (r *run) sleep(lo, hi time.Duration) {
	time.Sleep(lo + time.Duration(r.rng.Int63n(int64(hi-lo)+1)))
}

// chaos runs until n kills are done.
func (r *run) chaos() {
	for r.c.kills < r.n {
		r.sleep(50*time.Millisecond, 500*time.Millisecond)
		r.resumeDue()
		r.superviseExits()
		d := r.pick()
		if u := r.rng.Float64(); u < 0.5 {
			r.waitInHand(d, time.Second)
		} else if u < 0.7 && r.rawPOP3 != nil {
			r.waitInHandshake(d, 2*time.Second)
		}
		r.kill(d)
		if r.rng.Float64() < 0.06 {
			r.sigterm(r.pick())
		}
		if r.rng.Float64() < 0.06 {
			r.stall(r.pick())
		}
		if r.rng.Float64() < 0.6 {
			r.netfault()
		}
		if r.rng.Float64() < 0.25 {
			r.operator()
		}
		r.feed()
	}
}

// doing says what daemon d was doing, from its last log line since its
// start: a line older than a second means it was idle.
func (r *run) doing(d string) string {
	if _, ok := r.stalled[d]; ok {
		return "stalled (SIGSTOP)"
	}
	l, ok := LastLine(r.logPath(d), r.logFrom[d])
	if !ok {
		return "starting (no log line yet)"
	}
	if l.Event == 2029 { // logged as a failed poll ends: now it waits
		return "backing off after a failed poll (2029)"
	}
	if st, err := os.Stat(r.logPath(d)); err == nil && time.Since(st.ModTime()) > time.Second {
		return "idle after " + l.Step()
	}
	return l.Step()
}

// inHand reports whether d has work in its tmp/ folder: a message being
// downloaded (fetchd), routed (rewrited) or delivered (deliverd).
func (r *run) inHand(d string) bool {
	entries, _ := os.ReadDir(filepath.Join(r.f.Spool, "tmp", d))
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			return true
		}
	}
	return false
}

// waitInHand waits up to max for d to have work in hand, so that half
// the kills land in the middle of the protocol rather than in idle time.
// A fetchd backing off after a cut session gets Retrieve Now pressed.
func (r *run) waitInHand(d string, max time.Duration) {
	if l, ok := LastLine(r.logPath(d), r.logFrom[d]); ok && l.Event == 2029 && r.retrieveNow() {
		r.c.ops["retrieve-now"]++
		max += time.Second // fetchd looks for the button every second
	}
	deadline := time.Now().Add(max)
	for !r.inHand(d) && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
}

func (r *run) kill(d string) {
	if !r.f.Running(d) {
		return
	}
	what := r.doing(d)
	if r.inHand(d) {
		what = "[in hand] " + what
	}
	if p := r.rawProxy(d); p != nil && p.InHandshake() > 0 {
		what = "[in TLS handshake] " + what
		r.c.inHandshake++
	}
	if err := r.f.Kill(d); err != nil {
		r.t.Fatal(err)
	}
	delete(r.stalled, d)
	r.c.kills++
	r.c.killedWhile[d+"\t"+what]++
	r.sleep(0, 50*time.Millisecond)
	r.start(d, "SIGKILL")
}

// superviseExits restarts daemons that ended by themselves, as systemd
// would; with no disk faults injected, none should.
func (r *run) superviseExits() {
	for _, d := range harness.Daemons {
		if !r.f.Exited(d) {
			continue
		}
		l, _ := LastLine(r.logPath(d), r.logFrom[d])
		r.c.exits++
		r.violation("%s exited by itself (%v); last line: %s", d, r.f.ExitErr(d), l.Raw)
		delete(r.stalled, d)
		r.start(d, "exit")
	}
}

func (r *run) violation(format string, args ...any) {
	r.bad = append(r.bad, fmt.Sprintf(format, args...))
}

// started reports whether d logged "daemon started" (1001) since its last
// start, so its signal handlers are in place.
func (r *run) started(d string) bool {
	ok := false
	ScanLog(r.logPath(d), r.logFrom[d], -1, func(l Line) { ok = ok || l.Event == 1001 })
	return ok
}

// sigterm stops d with SIGTERM: it must finish the file in hand and exit
// 0 within stopBound (sigtermStop).
func (r *run) sigterm(d string) {
	if _, ok := r.stalled[d]; ok || !r.f.Running(d) || !r.started(d) {
		return
	}
	took, problems := r.stop(d)
	r.c.sigterm++
	r.c.sigtermMax = max(r.c.sigtermMax, took)
	for _, p := range problems {
		r.violation("SIGTERM: %s", p)
	}
	r.start(d, "SIGTERM")
}

// stop is sigtermStop, with its deliveries cut after the final dot taken
// as the network's when an SMTP cut fired during the stop (counted in
// sigtermNetCuts), else as deliverd's.
func (r *run) stop(d string) (time.Duration, []string) {
	before := r.smtpCuts()
	took, problems, afterDot := sigtermStop(r.f, d, r.logPath(d))
	if r.smtpCuts() > before {
		r.c.sigtermNetCuts += len(afterDot)
		return took, problems
	}
	return took, append(problems, afterDot...)
}

// smtpCuts is how many SMTP connections the faults cut so far, after the
// final dot or anywhere else.
func (r *run) smtpCuts() int {
	if r.rawSMTP != nil {
		st := r.rawSMTP.Stats()
		return st.Cuts[0] + st.Cuts[1] + r.smtp.afterDots()
	}
	fired := r.faults.Fired()
	return fired[SMTPAfterDot] + fired[SMTPMidData]
}

// stall stops d with SIGSTOP for 0.2 to 2 s.
func (r *run) stall(d string) {
	if _, ok := r.stalled[d]; ok || !r.f.Running(d) {
		return
	}
	if err := r.f.Signal(d, syscall.SIGSTOP); err != nil {
		return
	}
	r.c.stalls++
	r.stalled[d] = time.Now().Add(200*time.Millisecond + time.Duration(r.rng.Int63n(int64(1800*time.Millisecond))))
}

func (r *run) resumeDue() {
	for d, until := range r.stalled {
		if time.Now().After(until) {
			r.f.Signal(d, syscall.SIGCONT) // it may have exited meanwhile
			delete(r.stalled, d)
		}
	}
}

func (r *run) resumeAll() {
	for d := range r.stalled {
		r.f.Signal(d, syscall.SIGCONT)
		delete(r.stalled, d)
	}
}

// netfault arms one network fault: a cut by one of the proxies, or a 4xx
// to the next RCPT.
func (r *run) netfault() {
	k := r.rng.Intn(int(NumKinds) + 1)
	skip := r.rng.Intn(40)
	if k == int(NumKinds) {
		r.smtp.armRcpt()
		return
	}
	switch {
	case r.rawPOP3 == nil:
		r.faults.Arm(Kind(k), skip)
	case Kind(k) == SMTPAfterDot: // the raw proxies of a TLS run draw their own cuts, but cannot find the dot
		r.smtp.armAfterDot()
	}
}
