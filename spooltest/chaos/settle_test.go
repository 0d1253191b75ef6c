//go:build unix

package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"example.org/popspool/spooltest/faultproxy"
	"example.org/popspool/spooltest/harness"
)

// settle ends the chaos: no more faults, every daemon running, all the
// mail in the mailbox; then it waits until the mailbox, the spool
// (failed/ and badmail/ aside) and the SMTP server's queue are empty.
// fetchd may be backing off after cut sessions (a minute, doubling), so
// Retrieve Now is pressed every few seconds, as an operator waiting for
// the last mail would.
func (r *run) settle() {
	r.faults.Disarm()
	if r.rawPOP3 != nil {
		r.rawPOP3.Disarm()
		r.rawSMTP.Disarm()
	}
	r.smtp.disarmRcpt()
	r.resumeAll()
	r.copies.Wait()
	r.feedTo(len(r.mail))
	r.superviseExits()
	timeout := 2*time.Minute + time.Duration(len(r.want))*50*time.Millisecond
	deadline := time.Now().Add(timeout)
	stable := 0
	for i := 0; stable < 3; i++ {
		if time.Now().After(deadline) {
			r.violation("not settled after %v: mailbox holds %d, spool %v, SMTP server's queue %d",
				timeout, r.pop.left(r.f), r.f.SpoolFiles(), r.smtp.queued())
			return
		}
		time.Sleep(500 * time.Millisecond)
		r.superviseExits()
		if i%6 == 0 {
			r.retrieveNow()
		}
		if r.settled() {
			stable++
		} else {
			stable = 0
		}
	}
}

// settled reports whether the mailbox, the spool (failed/ and badmail/
// aside) and the SMTP server's queue are empty.
func (r *run) settled() bool {
	if r.pop.left(r.f) != 0 || r.smtp.queued() != 0 {
		return false
	}
	n := r.f.SpoolFiles()
	return n["incoming"]+n["pickup"]+n["deferred"]+n["tmp/fetchd"]+n["tmp/rewrited"]+n["tmp/deliverd"] == 0
}

// stopAll stops each daemon with SIGTERM, as at the end of a day, and
// waits for the SMTP server to have delivered what it accepted.
func (r *run) stopAll() {
	for _, d := range harness.Daemons {
		if _, problems := r.stop(d); len(problems) > 0 {
			r.violation("final SIGTERM: %s", strings.Join(problems, "; "))
		}
	}
	if err := r.wins.Snapshot(r.ledger()); err != nil {
		r.t.Fatal(err)
	}
	if !harness.WaitFor(time.Minute, func() bool { return r.smtp.queued() == 0 }) {
		r.violation("the SMTP server still has %d messages queued a minute after the daemons stopped", r.smtp.queued())
	}
}

// windows merges the W records counted from the ledger with the 4006
// events of deliverd's log (a kill between the record and its log line
// hides the line; a compaction hides the record), and splits them into
// the live ones (a connection lost after the dot) and the ones recovery
// counted at a start, by how the run before ended.
func (r *run) windows() (per map[string]int, live int, recovered map[string]int) {
	fromLog := map[string]int{}
	recovered = map[string]int{}
	r.segments("deliverd", func(after string, l Line) {
		if l.Event != 4006 {
			return
		}
		fromLog[l.ID]++
		if l.Error != "" {
			live++
		} else {
			recovered[after]++
		}
	})
	per = r.wins.Counts()
	for id, n := range fromLog {
		per[id] = max(per[id], n)
	}
	return per, live, recovered
}

// segments calls fn for each line of d's log with how the run before the
// one that wrote it ended.
func (r *run) segments(d string, fn func(after string, l Line)) {
	segs := r.starts[d]
	for i, s := range segs {
		end := int64(-1)
		if i+1 < len(segs) {
			end = segs[i+1].from
		}
		ScanLog(r.logPath(d), s.from, end, func(l Line) { fn(s.after, l) })
	}
}

// checkStops: a daemon stopped with SIGTERM finished the file in hand, so
// the next start must find nothing to recover (1011) and deliverd no
// delivery without an outcome (4006).
func (r *run) checkStops() {
	for _, d := range harness.Daemons {
		r.segments(d, func(after string, l Line) {
			recovery := l.Event == 1011 || l.Event == 4006 && l.Error == ""
			if after == "SIGTERM" && recovery {
				r.violation("%s found unfinished work after a SIGTERM stop: %s", d, l.Raw)
			}
		})
	}
}

// strayIDs returns the ids deliverd delivered (4001) that no daemon gave
// out: not fetched (2002) nor given to a copied file (1012). A claim that
// collides in tmp/deliverd/ gives the file a fresh id, and the ledger then
// cannot tell the copy from the original. Also the number of name
// collisions (1017) in all logs: two live files of one id.
func (r *run) strayIDs() (stray []string, collisions int) {
	known := map[string]bool{}
	for _, d := range harness.Daemons {
		ScanLog(r.logPath(d), 0, -1, func(l Line) {
			switch l.Event {
			case 2002, 1012:
				known[l.ID] = true
			case 1017:
				collisions++
			}
		})
	}
	ScanLog(r.logPath("deliverd"), 0, -1, func(l Line) {
		if l.Event == 4001 && !known[l.ID] {
			stray = append(stray, l.ID)
		}
	})
	return stray, collisions
}

// copyIDs maps each copied file to the ids rewrited gave it (1012).
func (r *run) copyIDs() map[string][]string {
	out := map[string][]string{}
	ScanLog(r.logPath("rewrited"), 0, -1, func(l Line) {
		if l.Event == 1012 {
			out[l.File] = append(out[l.File], l.ID)
		}
	})
	return out
}

func (r *run) report(chaosTime, total time.Duration) {
	t := r.t
	for _, err := range r.copyErr {
		r.violation("slow copy: %v", err)
	}
	r.checkStops()
	per, live, recovered := r.windows()
	w := 0
	for _, n := range per {
		w += n
	}
	fired := r.faults.Fired()
	if cuts := r.smtpCuts(); live > cuts {
		r.violation("%d unknown outcomes (4006) on a live connection, but only %d SMTP cuts injected", live, cuts)
	}
	got, err := r.smtp.delivered()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got.problems {
		r.violation("%s", p)
	}
	user, pass := r.f.Opt.Username, r.f.Opt.Password
	res := Verify(Input{
		Account: r.f.Opt.Account, Want: r.want, Garbage: r.garbage, DotFiles: r.dots,
		Delivered: got.msgs, Spool: r.f.Spool, Logs: r.f.Logs, Windows: per,
		CopyIDs: r.copyIDs(),
		Secrets: []string{pass, "\x00" + user + "\x00" + pass},
	})
	if left := r.pop.left(r.f); left != 0 {
		r.violation("the POP3 mailbox still holds %d messages", left)
	}
	if res.Duplicated > w {
		r.violation("%d duplicates but only %d W records", res.Duplicated, w)
	}
	stray, collisions := r.strayIDs()
	for _, id := range stray {
		r.violation("deliverd delivered id %s, which neither fetchd nor rewrited gave out: a claim collision in tmp/deliverd/ gave a copy a fresh id", id)
	}
	rcpt := r.smtp.disarmRcpt()
	net := rcpt
	var netDetail []string
	for k := Kind(0); k < NumKinds; k++ {
		net += fired[k]
		netDetail = append(netDetail, fmt.Sprintf("%s=%d", k, fired[k]))
	}
	netDetail = append(netDetail, fmt.Sprintf("rcpt-4xx=%d", rcpt))
	if r.rawPOP3 != nil {
		net = rcpt + r.smtp.afterDots()
		netDetail = []string{fmt.Sprintf("rcpt-4xx=%d sink-reply-dropped-after-dot=%d", rcpt, r.smtp.afterDots())}
		for _, p := range []struct {
			name string
			st   faultproxy.RawStats
		}{{"pop3", r.rawPOP3.Stats()}, {"smtp", r.rawSMTP.Stats()}} {
			net += p.st.Cuts[0] + p.st.Cuts[1] + p.st.Stalls
			netDetail = append(netDetail, p.name+": "+rawFigures(p.st))
		}
	}
	ops := 0
	var opDetail []string
	for _, k := range sortedKeys(r.c.ops) {
		ops += r.c.ops[k]
		opDetail = append(opDetail, fmt.Sprintf("%s=%d", k, r.c.ops[k]))
	}
	fmt.Printf("chaos: %skills=%d sigterm=%d stalls=%d netfaults=%d operator=%d messages=%d lost=%d duplicated=%d smtp_window=%d leftover=%d seed=%d\n",
		r.tag, r.c.kills, r.c.sigterm, r.c.stalls, net, ops, res.Messages, res.Lost, res.Duplicated, w, res.Leftover, r.seed)
	fmt.Printf("chaos: netfaults %s\n", strings.Join(netDetail, " "))
	fmt.Printf("chaos: operator %s\n", strings.Join(opDetail, " "))
	fmt.Printf("chaos: delivered=%d in_failed=%d strange=%d garbage=%d dot_files=%d smtp_window: live=%d (SMTP cuts) at_start_after_sigkill=%d after_exit=%d after_sigterm=%d\n",
		res.Delivered, res.Failed, res.Strange, len(r.garbage), len(r.dots), live, recovered["SIGKILL"], recovered["exit"], recovered["SIGTERM"])
	fmt.Printf("chaos: self_exits=%d name_collisions=%d stray_ids=%d sigterm_max=%v sigterm_net_cuts=%d chaos_time=%v total_time=%v\n",
		r.c.exits, collisions, len(stray), r.c.sigtermMax.Round(time.Millisecond), r.c.sigtermNetCuts, chaosTime.Round(time.Second), total.Round(time.Second))
	if got.figures != "" {
		fmt.Printf("chaos: %s\n", got.figures)
	}
	if r.rawPOP3 != nil {
		popTLS, _, _ := r.pop.security()
		fmt.Printf("chaos: tls pop3=%s smtp=starttls kills_in_handshake=%d\n", popTLS, r.c.inHandshake)
	}
	fmt.Print(histogram(r.c.killedWhile))
	fmt.Printf("chaos: %s\n", Environment(r.f.Spool))
	Fail(t, append(r.bad, res.Problems...), r.f.Logs, fmt.Sprintf("chaos: seed %d; replay with POPSPOOL_SEED=%d POPSPOOL_CHAOS_N=%d POPSPOOL_CHAOS_MESSAGES=%d go test -run '^%s$'",
		r.seed, r.seed, r.n, len(r.mail), t.Name()))
}

// histogram prints what each killed daemon was doing, most frequent
// first per daemon.
func histogram(h map[string]int) string {
	var b strings.Builder
	b.WriteString("chaos: killed while (daemon, kills, its last log line before the kill):\n")
	keys := sortedKeys(h)
	sort.SliceStable(keys, func(i, j int) bool {
		di, _, _ := strings.Cut(keys[i], "\t")
		dj, _, _ := strings.Cut(keys[j], "\t")
		if di != dj {
			return di < dj
		}
		return h[keys[i]] > h[keys[j]]
	})
	for _, k := range keys {
		d, what, _ := strings.Cut(k, "\t")
		fmt.Fprintf(&b, "  %-8s %5d  %s\n", d, h[k], what)
	}
	return b.String()
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
