// Package diskfull is layer 4 of the reliability test plan (notes/
// reliability.md §9): the three real daemons run with their spool on a
// small tmpfs (the POP3 mailbox and the SMTP sink elsewhere), while a
// filler takes all the space at random moments and gives it back. fetchd
// must send no DELE for a message that is not safe in the spool or
// delivered, nothing may be lost, and the mail must flow again once the
// space is back. It needs root (to mount the tmpfs) and Linux; otherwise
// the test says it was skipped, or fails with POPSPOOL_REQUIRE_REAL=1.
package diskfull
