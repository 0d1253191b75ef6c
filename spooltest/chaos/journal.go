package chaos

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ReadJournal reads a journal in shared/journal's format (one record a
// line: CRC-32C of the rest in hex, a space, the fields) without changing
// it, unlike journal.Open, which truncates a torn tail. good is the bytes
// of the whole, checksummed records from the start; torn is how many bytes
// follow them (0 when the journal parses to the end).
func ReadJournal(path string) (recs [][]string, good []byte, torn int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, 0, err
	}
	n := 0
	for n < len(b) {
		i := bytes.IndexByte(b[n:], '\n')
		if i < 0 {
			break
		}
		fields, ok := decodeRecord(b[n : n+i+1])
		if !ok {
			break
		}
		recs = append(recs, fields)
		n += i + 1
	}
	return recs, b[:n], len(b) - n, nil
}

func decodeRecord(line []byte) ([]string, bool) {
	if len(line) < 11 || line[8] != ' ' {
		return nil, false
	}
	body := line[9 : len(line)-1]
	if fmt.Sprintf("%08x", crc32.Checksum(body, castagnoli)) != string(line[:8]) {
		return nil, false
	}
	return strings.Split(string(body), " "), true
}

// Windows counts deliverd's W records (unknown outcomes, "smtp_window")
// per message id. deliverd compacts its ledger at start and the
// compaction drops W records, so a single read at the end undercounts:
// Snapshot must be called whenever deliverd is down, before each start and
// at the end. Between two compactions the ledger only grows; a snapshot
// that does not extend the previous one starts a new epoch, and the
// counts of all epochs add up.
type Windows struct {
	prefix []byte
	done   map[string]int
	cur    map[string]int
}

// Snapshot reads the ledger at path; a missing ledger counts as empty.
func (w *Windows) Snapshot(path string) error {
	recs, good, _, err := ReadJournal(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if w.done == nil {
		w.done, w.cur = map[string]int{}, map[string]int{}
	}
	if !bytes.HasPrefix(good, w.prefix) {
		for id, n := range w.cur {
			w.done[id] += n
		}
	}
	w.cur = map[string]int{}
	for _, r := range recs {
		if len(r) >= 2 && r[0] == "W" {
			w.cur[r[1]]++
		}
	}
	w.prefix = append(w.prefix[:0], good...)
	return nil
}

// Counts returns the W records seen per id.
func (w *Windows) Counts() map[string]int {
	out := map[string]int{}
	for id, n := range w.done {
		out[id] += n
	}
	for id, n := range w.cur {
		out[id] += n
	}
	return out
}

// Total returns the number of W records seen.
func (w *Windows) Total() int {
	n := 0
	for _, c := range w.Counts() {
		n += c
	}
	return n
}
