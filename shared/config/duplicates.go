package config

import "time"

// Duplicates configures rewrited's optional duplicate filter, in [filter]:
// a message a recipient already got from popspool (same Message-ID, same
// envelope sender, same body) within DuplicateWindow is not delivered to
// that recipient again. Off by default.
type Duplicates struct {
	DropDuplicates bool `toml:"drop_duplicates"`
	// DuplicateWindow is how long a message is remembered per recipient
	// (default 48h, 1m to 90 days: the set in memory grows with it).
	DuplicateWindow Duration `toml:"duplicate_window"`
	// DuplicateKeepDays is how long a file all of whose recipients had
	// the message already stays in duplicates/ before rewrited deletes
	// it (default 7, 1 to 365).
	DuplicateKeepDays int `toml:"duplicate_keep_days"`
}

// DefaultDuplicateWindow and DefaultDuplicateKeepDays are the values
// when the keys are not set.
const (
	DefaultDuplicateWindow   = 48 * time.Hour
	DefaultDuplicateKeepDays = 7
)

func (d *Duplicates) defaults() {
	if d.DuplicateWindow == 0 {
		d.DuplicateWindow = Duration(DefaultDuplicateWindow)
	}
	if d.DuplicateKeepDays == 0 {
		d.DuplicateKeepDays = DefaultDuplicateKeepDays
	}
}

func (d *Duplicates) validate(p *problems) {
	if w := d.DuplicateWindow.D(); w < time.Minute || w > 90*24*time.Hour {
		p.add("filter.duplicate_window", "%s is outside 1m to 2160h (90 days)", w)
	}
	if d.DuplicateKeepDays < 1 || d.DuplicateKeepDays > 365 {
		p.add("filter.duplicate_keep_days", "%d is outside 1 to 365", d.DuplicateKeepDays)
	}
}
