//go:build linux

package diskfull

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"example.org/popspool/spooltest/chaos"
	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/pop3srv"
	"example.org/popspool/spooltest/smtpsink"
)

// spoolSize is the tmpfs under the spool: a few hundred messages in
// flight, little enough to fill in a moment.
const spoolSize = 16 << 20

// TestDiskFull runs the flow with its spool on a small tmpfs while a
// filler takes all the space (or all but a little) at random moments and
// gives it back. POPSPOOL_DISKFULL_EPISODES sets the number of episodes
// (default 6), POPSPOOL_SEED replays a run, POPSPOOL_KEEP=1 keeps its
// folder.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("disk-full test skipped in -short mode")
	}
	if why := canMount(); why != "" {
		if os.Getenv("POPSPOOL_REQUIRE_REAL") == "1" {
			t.Fatalf("diskfull: POPSPOOL_REQUIRE_REAL=1 but %s", why)
		}
		fmt.Printf("diskfull: skipped: %s\n", why)
		t.Skip(why)
	}
	d := newRun(t)
	for e := 0; e < d.episodes; e++ {
		d.episode()
	}
	d.settle()
	d.stopAll()
	d.report()
}

// TestMain removes the daemons built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	bins.Remove()
	os.Exit(code)
}

var bins = harness.Binaries{Prefix: "popspool-diskfull-bin-"}

func daemons(t *testing.T) string { return bins.Dir(t) }

type run struct {
	t        *testing.T
	seed     int64
	rng      *rand.Rand
	episodes int
	f        *harness.Flow
	sink     *smtpsink.Sink
	staging  string
	mail     [][]byte
	fed      int
	feeding  bool
	feedFrom time.Time
	feedBase int

	full      atomic.Bool // the filler holds the space
	mu        sync.Mutex  // guards the DELE counts, written by the POP3 server's hook
	deles     int
	deleted   map[string]int // mailbox file -> DELEs seen for it
	delesFull int
	unsafe    []string // DELEs of messages found nowhere safe
	unsafeFul int

	wins       chaos.Windows
	logFrom    map[string]int64
	lastStart  map[string]time.Time
	exits      int
	stalls     int // episodes with deliverd stalled until the disk was full
	pressed    int // Retrieve Now pressed for a fetchd backing off
	recovered  int
	recoveries []time.Duration
	bad        []string
}

func newRun(t *testing.T) *run {
	seed := harness.EnvInt(t, "POPSPOOL_SEED", time.Now().UnixNano())
	d := &run{t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), episodes: int(harness.EnvInt(t, "POPSPOOL_DISKFULL_EPISODES", 6)),
		logFrom: map[string]int64{}, lastStart: map[string]time.Time{}, deleted: map[string]int{}}
	fmt.Printf("diskfull: seed=%d episodes=%d (replay: POPSPOOL_SEED=%d POPSPOOL_DISKFULL_EPISODES=%d)\n", seed, d.episodes, seed, d.episodes)
	dir := t.TempDir()
	if os.Getenv("POPSPOOL_KEEP") != "" {
		var err error
		if dir, err = os.MkdirTemp("", "popspool-diskfull-"); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("diskfull: keeping the run's folder %s\n", dir)
	}
	bins := daemons(t)
	spool := filepath.Join(dir, "spool")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, spool, spoolSize) // unmounted after the daemons stopped
	sink, err := smtpsink.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	d.sink = sink
	d.f, err = harness.New(dir, bins, harness.Options{Target: "smtp://" + sink.Addr})
	if err != nil {
		t.Fatal(err)
	}
	if d.f.Spool != spool {
		t.Fatalf("the harness put the spool in %s, not on the tmpfs %s", d.f.Spool, spool)
	}
	t.Cleanup(d.f.Close)
	d.f.Server.SetFault(d.hook)
	d.staging = filepath.Join(dir, "staging")
	if err := os.MkdirAll(d.staging, 0o700); err != nil {
		t.Fatal(err)
	}
	if d.mail, err = harness.Generate(d.staging, 150*d.episodes, seed); err != nil {
		t.Fatal(err)
	}
	d.feedTo(20)
	d.feeding, d.feedFrom, d.feedBase = true, time.Now(), d.fed
	for _, n := range harness.Daemons {
		d.start(n)
	}
	return d
}

func boxName(i int) string { return fmt.Sprintf("m%06d.eml", i) }

func (d *run) feedTo(k int) {
	for ; d.fed < min(k, len(d.mail)); d.fed++ {
		src := filepath.Join(d.staging, fmt.Sprintf("m%04d.eml", d.fed))
		if err := os.Rename(src, filepath.Join(d.f.Box, boxName(d.fed))); err != nil {
			d.t.Fatal(err)
		}
	}
}

// feed adds mail at 20 messages a second while feeding is on.
func (d *run) feed() {
	if d.feeding {
		d.feedTo(d.feedBase + int(time.Since(d.feedFrom).Seconds()*20))
	}
}

func (d *run) pause(on bool) {
	if on && !d.feeding {
		d.feedFrom, d.feedBase = time.Now(), d.fed
	}
	d.feeding = on
}

func (d *run) logPath(n string) string { return filepath.Join(d.f.Logs, n+".log") }

func (d *run) ledger() string { return filepath.Join(d.f.Spool, "state", "deliverd.ledger") }

func (d *run) start(n string) {
	if n == "deliverd" {
		if err := d.wins.Snapshot(d.ledger()); err != nil {
			d.t.Fatal(err)
		}
	}
	d.logFrom[n] = chaos.Size(d.logPath(n))
	d.lastStart[n] = time.Now()
	if err := d.f.Start(n); err != nil {
		d.t.Fatal(err)
	}
}

// tick is one step of the main loop: restart what exited (as systemd
// would, at most every quarter second), feed mail, keep the disk full.
func (d *run) tick() {
	time.Sleep(20 * time.Millisecond)
	for _, n := range harness.Daemons {
		if d.f.Exited(n) && time.Since(d.lastStart[n]) > 250*time.Millisecond {
			d.exits++
			d.start(n)
		}
	}
	d.feed()
}

func (d *run) ticks(dur time.Duration) {
	for end := time.Now().Add(dur); time.Now().Before(end); {
		d.tick()
	}
}

func (d *run) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(d.rng.Int63n(int64(hi-lo)+1))
}

// filler takes the space: it writes into a file at the tmpfs's root (a
// dot-file, which no daemon looks at) until at most room bytes are free,
// and tops it up every millisecond, as the daemons free space by removing
// files, until stop is closed. It returns once the disk is full.
func (d *run) filler(room int64) (stop func()) {
	path := filepath.Join(d.f.Spool, ".filler")
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	topUp := func() error {
		for {
			over := free(d.f.Spool) - room
			if over <= 0 {
				return nil
			}
			_, err := fh.Write(chunk[:min(over, int64(len(chunk)))])
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	if err := topUp(); err != nil {
		d.t.Fatal(err)
	}
	done, stopped := make(chan struct{}), make(chan error)
	go func() {
		var err error
		for err == nil {
			select {
			case <-done:
				stopped <- nil
				return
			case <-time.After(time.Millisecond):
			}
			err = topUp()
		}
		<-done
		stopped <- err
	}()
	return func() {
		close(done)
		err := <-stopped
		if err == nil {
			err = fh.Close()
		}
		if err == nil {
			err = os.Remove(path) // the space comes back
		}
		if err != nil {
			d.t.Fatal(err)
		}
	}
}

// episode lets the mail flow, fills the disk, holds it full, gives the
// space back and waits until everything fed so far is delivered.
func (d *run) episode() {
	d.pause(true)
	d.ticks(d.between(time.Second, 2500*time.Millisecond))
	room := int64(0)
	if d.rng.Intn(2) == 0 {
		room = 4096 * (1 + d.rng.Int63n(64)) // a little room: writes fail midway
	}
	// deliverd is quick and writes little; in a third of the episodes it
	// is stalled until pickup/ holds a backlog, so that it meets the full
	// disk in the middle of its work (ledger appends, deferrals).
	stalled := d.rng.Intn(3) == 0 && d.f.Signal("deliverd", syscall.SIGSTOP) == nil
	if stalled {
		d.stalls++
		room = 0
		// 60 messages take 6 KB of ledger records: more than the page
		// the ledger's last record may still have room in.
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && d.count("pickup") < 60; {
			d.tick()
		}
	}
	backlog := d.count("pickup")
	release := d.filler(room)
	d.full.Store(true)
	sent, enospc := d.sink.Count(), d.events(1007)
	if stalled {
		d.f.Signal("deliverd", syscall.SIGCONT)
	}
	hold := d.between(time.Second, 3*time.Second)
	d.ticks(hold)
	d.full.Store(false)
	release()
	d.t.Logf("episode %d: full for %v leaving %d KB, deliverd stalled into it %v with %d in pickup/; meanwhile %d delivered, %d ENOSPC events",
		len(d.recoveries)+1, hold.Round(time.Millisecond), room>>10, stalled, backlog, d.sink.Count()-sent, d.events(1007)-enospc)
	d.pause(false)
	released := time.Now()
	pressed := false
	for time.Since(released) < 60*time.Second {
		d.tick()
		if d.caughtUp() {
			d.recovered++
			d.recoveries = append(d.recoveries, time.Since(released))
			return
		}
		// After a poll failed for lack of space fetchd backs off (a
		// minute, doubling) as after a server failure; an operator
		// waiting for the mail presses Retrieve Now.
		if !pressed && d.backingOff() {
			pressed = true
			d.pressed++
			os.WriteFile(filepath.Join(d.f.Spool, "control", "retrieve-now"), nil, 0o600)
		}
	}
	d.bad = append(d.bad, fmt.Sprintf("episode %d: not caught up 60 s after the space came back: mailbox %d, spool %v",
		len(d.recoveries)+1, d.f.Server.Stats().Left, d.f.SpoolFiles()))
}

// events counts event ev in all the logs.
func (d *run) events(ev int) int {
	n := 0
	for _, name := range harness.Daemons {
		chaos.ScanLog(d.logPath(name), 0, -1, func(l chaos.Line) {
			if l.Event == ev {
				n++
			}
		})
	}
	return n
}

// backingOff reports whether fetchd's last poll failed and it waits out
// its back-off (2029 after the last poll's 2001).
func (d *run) backingOff() bool {
	last := 0
	chaos.ScanLog(d.logPath("fetchd"), d.logFrom["fetchd"], -1, func(l chaos.Line) {
		if l.Event == 2001 || l.Event == 2029 {
			last = l.Event
		}
	})
	return last == 2029
}

// count returns the number of files in a spool folder, dot-files aside.
func (d *run) count(folder string) int { return d.f.SpoolFiles()[folder] }

// caughtUp: everything fed so far has left the mailbox and the spool.
func (d *run) caughtUp() bool {
	return d.f.Settled() && d.f.SpoolFiles()["deferred"] == 0
}

// hook is the POP3 server's fault hook: at every DELE it checks that the
// message is safe in the spool or delivered.
func (d *run) hook(ev pop3srv.Event) bool {
	cmd, arg, _ := strings.Cut(ev.Cmd, " ")
	if ev.Name != pop3srv.EvCommand || !strings.EqualFold(cmd, "DELE") {
		return false
	}
	full := d.full.Load()
	name := d.nth(arg)
	safe := false
	for try := 0; try < 3 && !safe; try++ { // a file moving on during a scan can be missed once
		safe = name != "" && d.safe(strings.TrimSuffix(name, ".eml"))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deles++
	d.deleted[name]++
	if full {
		d.delesFull++
	}
	if !safe {
		d.unsafe = append(d.unsafe, fmt.Sprintf("DELE %s (%s) while full=%v", arg, name, full))
		if full {
			d.unsafeFul++
		}
	}
	return false
}

// nth maps a message number to its file: the session's maildrop is the
// mailbox's .eml files sorted by name; files are only added (with later
// names) or removed by the session holding the lock, so the listing now
// numbers the messages as the session does.
func (d *run) nth(arg string) string {
	n, err := strconv.Atoi(arg)
	entries, _ := os.ReadDir(d.f.Box)
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".eml") {
			names = append(names, e.Name())
		}
	}
	if err != nil || n < 1 || n > len(names) {
		return ""
	}
	return names[n-1]
}

// safe reports whether the message with this UIDL is in a spool folder
// (in pipeline order, so a file moving on is found in the next one) or
// was delivered. fetchd's Received line names the UIDL.
func (d *run) safe(uidl string) bool {
	needle := []byte("; uidl " + uidl + ")")
	for _, dir := range []string{"tmp/fetchd", "incoming", "tmp/rewrited", "pickup", "tmp/deliverd", "deferred", "badmail", "failed"} {
		entries, _ := os.ReadDir(filepath.Join(d.f.Spool, dir))
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") || strings.HasSuffix(e.Name(), ".part") {
				continue // a .part is not safe yet, even when recorded: fetchd moves it on before DELE
			}
			if head(filepath.Join(d.f.Spool, dir, e.Name()), needle) {
				return true
			}
		}
	}
	for _, m := range d.sink.Messages() {
		if bytes.Contains(m.Data[:min(len(m.Data), 1024)], needle) {
			return true
		}
	}
	return false
}

func head(path string, needle []byte) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 1024)
	n, _ := f.Read(b)
	return bytes.Contains(b[:n], needle)
}

func (d *run) settle() {
	d.pause(false)
	d.feedTo(len(d.mail))
	os.WriteFile(filepath.Join(d.f.Spool, "control", "retrieve-now"), nil, 0o600)
	deadline := time.Now().Add(2 * time.Minute)
	for !d.caughtUp() {
		if time.Now().After(deadline) {
			d.bad = append(d.bad, fmt.Sprintf("not settled after 2 min: mailbox %d, spool %v", d.f.Server.Stats().Left, d.f.SpoolFiles()))
			return
		}
		d.tick()
	}
}

func (d *run) stopAll() {
	for _, n := range harness.Daemons {
		if err := d.f.Stop(n, 15*time.Second); err != nil {
			d.bad = append(d.bad, fmt.Sprintf("final SIGTERM: %s: %v", n, err))
		}
	}
	if err := d.wins.Snapshot(d.ledger()); err != nil {
		d.t.Fatal(err)
	}
}

func (d *run) report() {
	t := d.t
	events := map[int]int{}
	winsLog := map[string]int{}
	for _, n := range harness.Daemons {
		chaos.ScanLog(d.logPath(n), 0, -1, func(l chaos.Line) {
			events[l.Event]++
			if l.Event == 4006 {
				winsLog[l.ID]++
			}
		})
	}
	per := d.wins.Counts()
	w := 0
	for id, n := range winsLog {
		per[id] = max(per[id], n)
	}
	for _, n := range per {
		w += n
	}
	var want []chaos.Want
	for i, b := range d.mail {
		want = append(want, chaos.Want{Name: boxName(i), Wire: harness.Wire(b)})
	}
	res := chaos.Verify(chaos.Input{Account: d.f.Opt.Account, Want: want, Delivered: d.sink.Messages(),
		Spool: d.f.Spool, Logs: d.f.Logs, Windows: per,
		Secrets: []string{d.f.Server.Pass, "\x00" + d.f.Server.User + "\x00" + d.f.Server.Pass}})
	problems := append(d.bad, res.Problems...)
	d.mu.Lock()
	for _, u := range d.unsafe {
		problems = append(problems, "unsafe "+u+": the message was neither in the spool nor delivered")
	}
	deles, delesFull, unsafeFull := d.deles, d.delesFull, d.unsafeFul
	// Every message left the mailbox by a DELE the hook saw and mapped
	// to its file; one it missed means the check looked at the wrong one.
	for i := range d.mail {
		if d.deleted[boxName(i)] == 0 {
			problems = append(problems, fmt.Sprintf("the DELE check never saw %s deleted", boxName(i)))
		}
	}
	d.mu.Unlock()
	if left := d.f.Server.Stats().Left; left != 0 {
		problems = append(problems, fmt.Sprintf("the POP3 mailbox still holds %d messages", left))
	}
	if events[1007] == 0 {
		problems = append(problems, "no daemon ever met a full disk (no event 1007): the episodes tested nothing")
	}
	var slowest time.Duration
	for _, r := range d.recoveries {
		slowest = max(slowest, r)
	}
	fmt.Printf("diskfull: episodes=%d enospc=%d dele_while_full=%d lost=%d duplicated=%d smtp_window=%d recovered=%d/%d seed=%d\n",
		d.episodes, events[1007], unsafeFull, res.Lost, res.Duplicated, w, d.recovered, d.episodes, d.seed)
	fmt.Printf("diskfull: messages=%d deles=%d deles_while_full=%d (of safe messages) unsafe_deles=%d deliverd_stalled_into_full=%d self_exits=%d ledger_failures=%d journal_failures=%d retrieve_now=%d slowest_recovery=%v leftover=%d\n",
		res.Messages, deles, delesFull, len(d.unsafe), d.stalls, d.exits, events[4017], events[2030], d.pressed, slowest.Round(100*time.Millisecond), res.Leftover)
	fmt.Printf("diskfull: %s\n", chaos.Environment(d.f.Spool))
	chaos.Fail(t, problems, d.f.Logs, fmt.Sprintf("diskfull: seed %d", d.seed))
}
