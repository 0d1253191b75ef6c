package powercut

import (
	"math/rand"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"
)

// State is what the disk holds after a power cut: files by relative path.
type State map[string][]byte

// maxStates bounds the states built per crash point; beyond it a random
// sample is taken.
const maxStates = 256

// States returns the crash states after the first k recorded calls.
func (r *Recorder) States(k int, rng *rand.Rand) []State {
	ops := r.Ops[:k]
	effects := make([]effect, len(ops))
	var pending []*bool
	for i := range ops {
		e := &effects[i]
		e.add, e.drop = r.durable(ops, i)
		if !e.add {
			pending = append(pending, &e.add)
		}
		if ops[i].Kind == "rename" && !e.drop {
			pending = append(pending, &e.drop)
		}
	}
	var out []State
	for _, chosen := range subsets(len(pending), rng) {
		for j, p := range pending {
			*p = chosen[j]
		}
		if st, ok := r.replay(ops, effects, nil); ok {
			out = append(out, st)
		}
		if st, ok := r.replay(ops, effects, rng); ok && st != nil {
			out = append(out, st) // the same, with unsynced appends torn
		}
		for i := range ops { // reset the pending bits for the next choice
			effects[i].add, effects[i].drop = r.durable(ops, i)
		}
	}
	return out
}

// effect says which halves of a call reached the disk: add is the new
// name (or the whole call, for create and remove), drop is the old name
// of a rename.
type effect struct{ add, drop bool }

// durable says which halves of call i are durable at the cut. A folder
// entry change is durable once its folder is fsynced later. A rename is
// atomic: if its old name is durably gone, its new name is there too; the
// reverse (new name durable, old name not yet gone) is a copy, not a loss.
func (r *Recorder) durable(ops []Op, i int) (add, drop bool) {
	op := ops[i]
	switch op.Kind {
	case "write", "sync", "syncdir", "mark", "reuse", "truncate": // data: replay decides
		return true, true
	case "rename":
		drop = syncedAfter(ops, i, path.Dir(op.Path))
		return drop || syncedAfter(ops, i, path.Dir(op.To)), drop
	}
	return syncedAfter(ops, i, path.Dir(op.Path)), false
}

func syncedAfter(ops []Op, i int, dir string) bool {
	for _, op := range ops[i+1:] {
		if op.Kind == "syncdir" && op.Path == dir {
			return true
		}
	}
	return false
}

// subsets lists which of n pending changes reached the disk: all 2^n
// combinations when few, else a random sample (always with "none" and
// "all").
func subsets(n int, rng *rand.Rand) [][]bool {
	if n <= 8 {
		out := make([][]bool, 0, 1<<n)
		for m := 0; m < 1<<n; m++ {
			s := make([]bool, n)
			for j := range s {
				s[j] = m&(1<<j) != 0
			}
			out = append(out, s)
		}
		return out
	}
	none, all := make([]bool, n), make([]bool, n)
	for j := range all {
		all[j] = true
	}
	out := [][]bool{none, all}
	for len(out) < maxStates {
		s := make([]bool, n)
		for j := range s {
			s[j] = rng.Intn(2) == 1
		}
		out = append(out, s)
	}
	return out
}

// replay applies the calls' effects to the starting state; ok is false
// for a combination the model forbids (a rename's old name gone without
// its new one). A file's content is what its last fsync before the cut
// recorded; a file never fsynced is empty (its data was lost). With tear,
// each file also keeps a random, non-empty prefix of what was appended to
// it since that fsync (the state is nil if nothing was: no new state).
func (r *Recorder) replay(ops []Op, eff []effect, tear *rand.Rand) (State, bool) {
	names := map[string]int{}
	data := map[int][]byte{}
	unsynced := map[int][]byte{}
	over := map[int]bool{} // written over since the last fsync: torn bytes overlay the old
	for p, b := range r.Initial {
		names[p] = r.start[p]
		data[r.start[p]] = b
	}
	for i, op := range ops {
		e := eff[i]
		switch op.Kind {
		case "sync":
			data[op.Inode] = op.Data
			delete(unsynced, op.Inode)
			delete(over, op.Inode)
		case "reuse":
			delete(unsynced, op.Inode)
			over[op.Inode] = true
		case "write":
			unsynced[op.Inode] = append(unsynced[op.Inode], op.Data...)
		case "create":
			if e.add {
				names[op.Path] = op.Inode
			}
		case "remove":
			if e.add {
				delete(names, op.Path)
			}
		case "rename":
			if e.drop && !e.add {
				return nil, false
			}
			ino, ok := names[op.Path]
			if !ok {
				continue
			}
			if e.add {
				names[op.To] = ino
			}
			if e.drop {
				delete(names, op.Path)
			}
		}
	}
	if tear != nil && !tearInto(data, unsynced, over, names, tear) {
		return nil, true
	}
	st := State{}
	for p, ino := range names {
		st[p] = data[ino]
	}
	return st, true
}

// tearInto appends to each named file a random non-empty prefix of its
// unsynced bytes (appends reach the disk in order, as ext4's ordered mode
// writes them back), or, for a file written over, lays that prefix over
// its old content; it reports whether any file had some.
func tearInto(data, unsynced map[int][]byte, over map[int]bool, names map[string]int, rng *rand.Rand) bool {
	torn := false
	for _, p := range sortedNames(names) {
		ino := names[p]
		u := unsynced[ino]
		if len(u) == 0 {
			continue
		}
		keep := 1 + rng.Intn(len(u))
		if over[ino] {
			old := data[ino]
			data[ino] = append(append([]byte(nil), u[:keep]...), old[min(keep, len(old)):]...)
		} else {
			data[ino] = append(append([]byte(nil), data[ino]...), u[:keep]...)
		}
		delete(unsynced, ino) // a file with two names is torn once
		torn = true
	}
	return torn
}

func sortedNames(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Materialize writes a state under root, with the recorder's folders.
func (r *Recorder) Materialize(st State, root string) error {
	for _, d := range r.Dirs {
		if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(d)), 0o700); err != nil {
			return err
		}
	}
	old := time.Now().Add(-time.Hour) // durable files are settled
	for p, b := range st {
		name := filepath.Join(root, filepath.FromSlash(p))
		if err := os.WriteFile(name, b, 0o600); err != nil {
			return err
		}
		if err := os.Chtimes(name, old, old); err != nil {
			return err
		}
	}
	return nil
}
