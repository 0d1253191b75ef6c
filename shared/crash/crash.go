// Package crash names the points of the handoff protocol where a crash
// test may kill a daemon. Point is a no-op in normal builds; built with
// -tags crashpoints, POPSPOOL_CRASH=<point>:<k> makes the process kill
// itself with SIGKILL at the k-th time it passes <point> (gofail's idea,
// without the dependency). spooltest/crashpoints runs every point.
package crash

// Points lists every crash point, so the crash-point matrix can show one
// that is never reached. Names are "<daemon>.<step>"; the spool's own
// steps are "<daemon>.spool.<step>".
var Points = []string{
	"fetchd.spool.sealed", "fetchd.retr", "fetchd.journaled", "fetchd.spool.moved", "fetchd.spool.committed",
	"fetchd.deleted", "fetchd.quit",
	"rewrited.spool.claimed", "rewrited.spool.committed", "rewrited.spool.sealed", "rewrited.spool.moved",
	"rewrited.spool.retired", "rewrited.spool.removed",
	"deliverd.spool.claimed", "deliverd.spool.committed", "deliverd.started", "deliverd.sent", "deliverd.done",
	"deliverd.spool.removed",
}
