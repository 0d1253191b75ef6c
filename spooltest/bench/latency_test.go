//go:build unix

package bench

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"example.org/popspool/spooltest/dovecot"
	"example.org/popspool/spooltest/harness"
	"example.org/popspool/spooltest/postfix"
)

// BenchmarkLatency is the one-message latency of an idle pipeline (issue
// 12: batching must never make an office wait): the three daemons run
// (poll interval 1 s, target the recipient's Maildir, POP3S from a
// private Dovecot); POPSPOOL_BENCH_LATENCY_N (default 20) single
// messages are put into the mailbox one at a time, each once the one
// before is delivered, and for each it takes the time from fetchd's RETR
// finishing (the time of its 2002 "fetched" line, logged when the part
// is written, before the batch is synced and journaled) to the file's
// arrival in the Maildir's new/ (seen by listing it every millisecond).
// It prints the median, the lowest and the highest; the time from the
// message's arrival at the server is printed too, but it includes the
// wait for fetchd's next poll (up to the interval).
//
//	go test -run '^$' -bench Latency -benchtime 1x ./bench
func BenchmarkLatency(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("skipping: needs root (the private Dovecot and Postfix masters start as root)")
	}
	dovecot.Require(b)
	postfix.Require(b)
	n := countFromEnv(b, "POPSPOOL_BENCH_LATENCY_N", 20)
	r := &rig{
		bins: bins.Dir(b),
		dc:   dovecot.Start(b, map[string]string{popUser: popPass}),
		pf:   postfix.Start(b, postfix.Options{Users: []string{rcptUser}}),
	}
	r.rcpt = r.pf.Address(rcptUser)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rn := r.fill(b, workload{n: 0, size: 10 << 10, label: "10KB"}, "tls", "popspool-maildir", i)
		f := r.flow(b, rn)
		for _, d := range harness.Daemons {
			if err := f.Start(d); err != nil {
				b.Fatal(err)
			}
		}
		arrived, put := r.oneByOne(b, f, rn, n)
		for _, d := range harness.Daemons {
			if err := f.Stop(d, 10*time.Second); err != nil {
				b.Errorf("stop %s: %v", d, err)
			}
		}
		fetched := fetchedTimes(b, f)
		if len(fetched) != n {
			b.Fatalf("fetchd logged %d fetches for %d messages", len(fetched), n)
		}
		var fromRetr, fromPut []time.Duration
		for j := range n {
			fromRetr = append(fromRetr, arrived[j].Sub(fetched[j]))
			fromPut = append(fromPut, arrived[j].Sub(put[j]))
		}
		med, lo, hi := spread(fromRetr)
		pmed, plo, phi := spread(fromPut)
		b.ReportMetric(float64(med.Microseconds())/1000, "ms-median")
		r.say("e2e: latency idle pipeline, %d single 10 KB messages into a Maildir over tls: RETR finished -> in new/ median %s (lowest %s, highest %s); on the server -> in new/ median %s (%s-%s, includes the wait for the 1 s poll)",
			n, ms(med), ms(lo), ms(hi), ms(pmed), ms(plo), ms(phi))
	}
}

// oneByOne puts n messages into the mailbox one at a time and returns
// when each arrived in the Maildir and when it was put.
func (r *rig) oneByOne(b *testing.B, f *harness.Flow, rn *run, n int) (arrived, put []time.Time) {
	newDir := filepath.Join(r.pf.MaildirOf(r.rcpt), "new")
	for j := range n {
		put = append(put, time.Now())
		r.dc.Put(b, popUser, message(rn.id, j, rn.w.size))
		deadline := time.Now().Add(30 * time.Second)
		for countDir(newDir) < j+1 {
			if time.Now().After(deadline) {
				b.Fatalf("message %d not in the Maildir after 30 s; log tails:\n%s", j, logTails(f))
			}
			time.Sleep(time.Millisecond)
		}
		arrived = append(arrived, time.Now())
	}
	return arrived, put
}

// fetchedTimes are the times of fetchd's 2002 lines, in order.
func fetchedTimes(b *testing.B, f *harness.Flow) []time.Time {
	file, err := os.Open(filepath.Join(f.Logs, "fetchd.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer file.Close()
	var out []time.Time
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct {
			Event int       `json:"event"`
			Time  time.Time `json:"time"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Event == 2002 {
			out = append(out, l.Time)
		}
	}
	return out
}

// spread is the median, lowest and highest of ds.
func spread(ds []time.Duration) (med, lo, hi time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[0], s[len(s)-1]
}
