package event

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// NewLogger returns the daemon's logger: JSON lines on w (stderr when nil),
// or a console writer when format is "console". level is one of error,
// warn, info, debug, trace.
func NewLogger(w io.Writer, daemon, level, format string) (zerolog.Logger, error) {
	if w == nil {
		w = os.Stderr
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		if level != "" {
			return zerolog.Nop(), fmt.Errorf("log level %q is not error, warn, info, debug or trace", level)
		}
		lvl = zerolog.InfoLevel
	}
	switch format {
	case "", "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	default:
		return zerolog.Nop(), fmt.Errorf("log format %q is not json or console", format)
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("daemon", daemon).Logger(), nil
}
