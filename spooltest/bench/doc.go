// Package bench holds popspool's end-to-end benchmark against real
// servers: a private Dovecot (POP3) as the ISP, a private Postfix
// (SMTP, delivering into Maildirs) as the office mail server, and between
// them either popspool's three daemons as processes or Debian's stock
// fetchmail. It measures the wall time from the start of the client until
// every message is in the Postfix Maildir, and checks that each one
// arrived exactly once.
//
//	make bench-e2e                               # as root; see docs/benchmarks.md
//	POPSPOOL_BENCH_N=200 go test -run '^$' -bench 'EndToEnd/10KB.*/tls/popspool' -benchtime 1x ./spooltest/bench
//	POPSPOOL_BENCH_PROFILE=/tmp/prof go test -run '^$' -bench 'EndToEnd/10KBx1000/plain/popspool$' -benchtime 1x ./spooltest/bench
//
// POPSPOOL_BENCH_PROFILE=<dir> runs each daemon of a popspool run under
// perf record -g (profile_test.go); POPSPOOL_BENCH_COUNT=perf counts the
// system calls of the popspool-strace runs with perf stat instead of
// strace (strace_test.go).
//
// The benchmark lives in the package's test files; this file only
// documents it.
package bench
