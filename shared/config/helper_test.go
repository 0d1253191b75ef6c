package config

import "testing"

func TestHelperOutput(t *testing.T) {
	for in, want := range map[string]string{
		"":                                   "(no message on standard error)",
		"\n\n":                               "(no message on standard error)",
		"no network\nmore":                   "no network",
		"bad\tgrant ya29.a0AfH6SMBx3kQ-long": "bad grant [redacted]",
		"short abc123 ok":                    "short abc123 ok",
	} {
		if got := helperOutput(in); got != want {
			t.Errorf("helperOutput(%q) = %q, want %q", in, got, want)
		}
	}
}
