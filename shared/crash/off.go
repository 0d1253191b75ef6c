//go:build !crashpoints || !unix

package crash

// Point marks a step of the protocol; without -tags crashpoints it does
// nothing.
func Point(string) {}

// Poison marks where a test may make a message deadly; without -tags
// crashpoints it does nothing.
func Poison(string, string) {}
