// Package testdata holds the corpus of malformed and unusual messages
// (corpus/*.eml, expected outcomes in corpus/EXPECT) that rewrited's tests
// run through the real worker.
package testdata

//go:generate go run ./gen corpus
