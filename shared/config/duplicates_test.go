package config

import (
	"strings"
	"testing"
	"time"
)

func TestDuplicatesDefaultsOff(t *testing.T) {
	c, err := Load(write(t, good))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Filter.Duplicates
	if d.DropDuplicates || d.DuplicateWindow.D() != 48*time.Hour || d.DuplicateKeepDays != 7 {
		t.Fatalf("defaults %+v", d)
	}
	c, err = Load(write(t, good+"\n[filter]\ndrop_duplicates = true\nduplicate_window = \"12h\"\nduplicate_keep_days = 30\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Filter.Duplicates; !d.DropDuplicates || d.DuplicateWindow.D() != 12*time.Hour || d.DuplicateKeepDays != 30 {
		t.Fatalf("set %+v", d)
	}
}

// Bad values name the file, the line and the key.
func TestDuplicatesErrorsNameFileLineKey(t *testing.T) {
	path := write(t, good+"\n[filter]\ndrop_duplicates = true\nduplicate_window = \"10s\"\nduplicate_keep_days = 400\nduplicate_windw = \"1h\"\n")
	_, err := Load(path)
	if err == nil {
		t.Fatal("bad [filter] accepted")
	}
	for _, want := range []string{
		path + ":21: filter.duplicate_window: 10s is outside 1m to 2160h",
		path + ":22: filter.duplicate_keep_days: 400 is outside 1 to 365",
		path + ":23: filter.duplicate_windw: unknown key",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	// A type error comes from the TOML decoder, in its own words, which
	// name the file, line and key all the same.
	path = write(t, good+"\n[filter]\ndrop_duplicates = \"yes\"\n")
	_, err = Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 20") || !strings.Contains(err.Error(), "filter.drop_duplicates") {
		t.Errorf("a string for a bool: %v", err)
	}
}
