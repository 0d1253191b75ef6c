//go:build !crashpoints || !unix

package crash

// Point marks a step of the protocol; without -tags crashpoints it does
// nothing.
func Point(string) {}
