package event

import "github.com/rs/zerolog"

// MaxTranscriptLine bounds the protocol line a transcript entry shows;
// a longer one is cut and its length given in "line_len".
const MaxTranscriptLine = 512

// TraceOn reports whether l logs at trace level (log.level = "trace").
func TraceOn(l *zerolog.Logger) bool {
	return l.GetLevel() <= zerolog.TraceLevel && zerolog.GlobalLevel() <= zerolog.TraceLevel
}

// Transcript returns the function that logs a protocol dialogue (POP3,
// SMTP, LMTP) one line at a time at trace level: message "transcript",
// "dir" C for a line sent, S for a line received, "line" the line. l
// carries the fields that name the session (account, session, target).
// It returns nil when l does not log at trace level, so that a protocol
// client given it builds no line at all.
//
// The lines are logged as given: masking secrets is the protocol client's
// job (pop3.Options.Trace, smtpc.Options.Trace). They are not
// operator-actionable, so they carry no event ID.
func Transcript(l zerolog.Logger) func(dir byte, line string) {
	if !TraceOn(&l) {
		return nil
	}
	return func(dir byte, line string) {
		e := l.Trace().Str("dir", string(rune(dir)))
		if len(line) > MaxTranscriptLine {
			e = e.Int("line_len", len(line))
			line = line[:MaxTranscriptLine] + "…"
		}
		e.Str("line", line).Msg("transcript")
	}
}
