// Package chaos is layer 3 of the reliability test plan (notes/
// reliability.md §9): the three real daemons run against the spooltest
// POP3 server and an SMTP sink, each behind a fault proxy, while a seeded
// scheduler kills, stops, stalls and restarts them, cuts connections at
// the protocol's worst moments, refuses recipients and plays the
// operator. At the end the flow settles and Verify checks the invariants:
// every message delivered exactly once (or in failed/ with a reason),
// byte-identical; each duplicate covered by a W record of deliverd's
// ledger; nothing left in the spool; no secret in any file.
//
// The test is TestChaos (make test runs a bounded one, make chaos N=...
// a long one); TestChaosReal is the same run between a real Dovecot and a
// real Postfix, when they can run here. TestChaosTLS and TestChaosRealTLS
// are the two with TLS on both legs, behind raw fault proxies that cut
// and stall at the TCP level (faultproxy.StartRaw). docs/chaos.md explains
// how to run them and read their figures.
// The package's exported parts (Faults, Windows, Verify) are shared with
// spooltest/diskfull.
package chaos
