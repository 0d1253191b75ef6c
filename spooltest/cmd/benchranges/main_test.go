package main

import (
	"strings"
	"testing"
)

// Two runs' figures become ranges; the lines printed while a run goes,
// before its summary, and a traced run's rate and CPU are not counted.
func TestRanges(t *testing.T) {
	run := func(rate, ratio, cpu, syncs, bound string) string {
		return "e2e: popspool plain msgs=1000 size=10KB 3.00s " + rate + " msgs/s 3.0 MB/s verified=exactly-once\n" +
			"e2e: --- all figures (2 cores) ---\n" +
			"e2e: popspool plain msgs=1000 size=10KB 3.00s " + rate + " msgs/s 3.0 MB/s verified=exactly-once cpu fetchd=0.40s(user 0.10 sys 0.30, 0.40 ms/msg, peak RSS 15.6 MB); 3 daemons " + cpu + " ms/msg machine-busy=90%\n" +
			"e2e: popspool-strace plain msgs=1000 size=10KB 9.00s 70 msgs/s 0.7 MB/s verified=exactly-once cpu fetchd=2.00s(user 0.50 sys 1.50, 2.00 ms/msg); 3 daemons 9.00 ms/msg machine-busy=99%\n" +
			"e2e: syscalls per message (perf) popspool-strace plain msgs=1000 size=10KB fsyncs(all kinds, 3 daemons)=" + syncs + "; fetchd: fsync 0.13\n" +
			"e2e: postfix-alone smtp-source -s 4 msgs=1000 size=10KB 3.58s 280 msgs/s 2.86 MB/s (count checked)\n" +
			"e2e: ratio plain msgs=1000 size=10KB popspool 300.0 msgs/s / smtp-source-s4 280.0 msgs/s = " + ratio + "x\n" +
			"e2e: cpu bound plain msgs=1000 size=10KB machine 5.70 ms/msg (daemons 1.26): 2 cores fully busy allow 351 msgs/s = " + bound + "x smtp-source-s4; without the daemons 450 msgs/s = 1.10x\n" +
			"PASS\n"
	}
	f, runs, err := read(strings.NewReader(run("300", "1.07", "1.50", "0.48", "0.85") + run("350", "0.95", "1.70", "0.52", "0.94")))
	if err != nil || runs != 2 {
		t.Fatalf("%d runs, %v", runs, err)
	}
	for name, want := range map[string]string{
		"msgs/s 10KBx1000 plain popspool":                                "300-350 (2)",
		"ratio plain 10KBx1000 popspool / smtp-source-s4":                "0.95-1.07 (2)",
		"cpu ms/msg 3 daemons 10KBx1000 plain popspool":                  "1.50-1.70 (2)",
		"cpu ms/msg fetchd 10KBx1000 plain popspool":                     "0.40 (2)",
		"fsyncs/msg 10KBx1000 plain popspool-strace":                     "0.48-0.52 (2)",
		"msgs/s 10KBx1000 postfix-alone smtp-source -s 4":                "280 (2)",
		"cpu bound plain 10KBx1000 / smtp-source-s4":                     "0.85-0.94 (2)",
		"cpu bound without the daemons plain 10KBx1000 / smtp-source-s4": "1.10 (2)",
	} {
		if v, ok := f[name]; !ok || span(v) != want {
			t.Errorf("%s: %v, want %s", name, v, want)
		}
	}
	if _, ok := f["msgs/s 10KBx1000 plain popspool-strace"]; ok {
		t.Error("a traced run's rate was counted")
	}
}
