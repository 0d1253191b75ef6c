// Package smtpc is the SMTP and LMTP client deliverd hands mail to:
// github.com/emersion/go-smtp v0.25.1 with a thin layer for what it lacks.
//
//	c, err := smtpc.Dial(ctx, target, opts) // greeting, EHLO/LHLO, STARTTLS, AUTH
//	res, err := c.Send(ctx, from, rcpts, body, size)
//	err = c.Reset()                          // RSET, then the next Send
//	err = c.Close()                          // QUIT
//
// Probe runs the same opening and a transaction without DATA, step by
// step, for `deliverd check`.
//
// Per-recipient verdicts are in Result; err is reserved for the connection
// failing, and then *Error.AfterDot says whether the final "." had gone
// out, so the caller can tell "not delivered" from "maybe delivered"
// (RFC 1047).
//
// Added on top of go-smtp:
//   - replies with a bare code ("250") are accepted (RFC 5321 §4.2);
//   - EHLO keywords are case-insensitive (RFC 5321 §2.4): "8bitmime" counts;
//   - opportunistic STARTTLS (RFC 3207), which go-smtp does not offer;
//   - the RFC 5321 §4.5.3.2 timeouts each on their own, including the
//     "data block" timeout while the body is written, and context
//     cancellation (closing the connection);
//   - an EHLO name that is an FQDN or an address literal, not "localhost";
//   - a SIZE pre-check (RFC 1870) and SMTPUTF8 when needed (RFC 6531).
//
// The package does not log; Options.Trace gets the dialogue, secrets
// masked, for a caller that does. A Conn is not safe for concurrent use.
package smtpc
