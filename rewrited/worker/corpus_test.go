package worker

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/spool"
)

const corpus = "../../spooltest/testdata/corpus"

// TestCorpus runs every malformed and unusual message of the corpus
// through the worker at once and checks each lands where EXPECT says,
// with its bytes intact, while the others flow on.
func TestCorpus(t *testing.T) {
	expect := readExpect(t)
	if len(expect) < 50 {
		t.Fatalf("corpus has %d cases, want at least 50", len(expect))
	}
	w := setup(t, "office")
	originals := map[string][]byte{}
	for name := range expect {
		b, err := os.ReadFile(filepath.Join(corpus, name))
		if err != nil {
			t.Fatal(err)
		}
		originals[name] = b
		drop(t, w, name, string(b))
	}
	if err := w.Run(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	got := outcomes(t, w)
	for name, want := range expect {
		t.Run(name, func(t *testing.T) {
			g, ok := got[string(message(originals[name]))]
			if !ok {
				t.Fatalf("not found in pickup/ or failed/ with its bytes intact")
			}
			if g != want {
				t.Fatalf("went to %q, want %q", g, want)
			}
		})
	}
	files := 0
	for _, folder := range []string{spool.Pickup, spool.Failed} {
		entries, _ := os.ReadDir(w.S.Dir(folder))
		files += len(entries)
	}
	if files != len(expect) {
		t.Fatalf("%d files came out, %d went in", files, len(expect))
	}
	distinct := map[string]bool{}
	for _, b := range originals {
		distinct[string(message(b))] = true
	}
	if len(got) != len(distinct) {
		t.Fatalf("%d distinct messages came out, %d went in", len(got), len(distinct))
	}
}

func readExpect(t *testing.T) map[string]string {
	b, err := os.ReadFile(filepath.Join(corpus, "EXPECT"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, outcome, _ := strings.Cut(line, " ")
		out[name] = outcome
	}
	return out
}

// message is what must survive of a file: everything after the envelope
// lines at its top, or all of it if those lines are broken.
func message(b []byte) []byte {
	off, err := envelopeEnd(b)
	if err != nil {
		return b
	}
	return b[off:]
}

func envelopeEnd(b []byte) (int, error) {
	br := bytes.NewReader(b)
	r := bufio.NewReader(br)
	_, err := envelope.Read(r)
	return len(b) - br.Len() - r.Buffered(), err
}

// outcomes maps each output file's message to "pickup" or "failed <id>".
func outcomes(t *testing.T, w *Worker) map[string]string {
	out := map[string]string{}
	for _, folder := range []string{spool.Pickup, spool.Failed} {
		entries, _ := os.ReadDir(w.S.Dir(folder))
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(w.S.Dir(folder), e.Name()))
			if folder == spool.Failed {
				// The failure line, then the file as it was.
				line, rest, _ := strings.Cut(string(b), "\r\n")
				ev, _, _ := strings.Cut(strings.TrimPrefix(line, "X-Popspool-Failed: "), " ")
				out[string(message([]byte(rest)))] = "failed " + ev
				continue
			}
			off, err := envelopeEnd(b)
			if err != nil || !bytes.HasPrefix(b, []byte("X-Sender: ")) {
				t.Fatalf("pickup/%s: no envelope (%v)", e.Name(), err)
			}
			out[string(b[off:])] = "pickup"
		}
	}
	return out
}
