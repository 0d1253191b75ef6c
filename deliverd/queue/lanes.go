package queue

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/envelope"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/liveness"
	"example.org/popspool/shared/spool"
)

// Lanes delivers one spool to several targets: one Queue per target (a
// lane), each with its own connections, retry schedule and expiry, each
// taking from pickup/ and deferred/ only the files whose X-Popspool-Target
// line names its target. The lanes run side by side, so a target that is
// down or hangs holds up its own files and no other's.
//
// The default lane (config.DefaultTarget) takes the files without the
// line, the files whose envelope cannot be read (it disposes of them as a
// single queue does), and the files naming a target the config does not
// have, which it defers (event 4041) until the target is configured again
// or they expire.
type Lanes struct {
	lead  *Queue            // the default lane: recovery, suspects
	lanes map[string]*Queue // by target name, lead included

	mu    sync.Mutex
	names map[string]string // folder/name and mtime -> target named in the file
}

// NewLanes ties the queues of the targets together, by target name; one
// of them must be the config.DefaultTarget's. The queues share one spool
// and ledger.
func NewLanes(byName map[string]*Queue) (*Lanes, error) {
	ls := &Lanes{lead: byName[config.DefaultTarget], lanes: byName, names: map[string]string{}}
	if ls.lead == nil {
		return nil, fmt.Errorf("no queue for the %s target", config.DefaultTarget)
	}
	for name, q := range byName {
		q.lanes, q.lane = ls, name
	}
	return ls, nil
}

// Names returns the lanes' target names, in order.
func (ls *Lanes) Names() []string { return slices.Sorted(maps.Keys(ls.lanes)) }

// Lane returns the queue of the target called name.
func (ls *Lanes) Lane(name string) *Queue { return ls.lanes[name] }

// Recover runs the lead's recovery (Queue.Recover) for the whole spool.
func (ls *Lanes) Recover() error {
	if err := ls.lead.Recover(); err != nil {
		return err
	}
	for _, q := range ls.lanes {
		q.book = ls.lead.book
	}
	return nil
}

// Close closes what Recover opened.
func (ls *Lanes) Close() error { return ls.lead.Close() }

// Unsent is the sum of the lanes' Unsent, read after Run.
func (ls *Lanes) Unsent() int {
	n := 0
	for _, q := range ls.lanes {
		n += q.Unsent
	}
	return n
}

// Run delivers the suspects of the last death alone, each by its own
// lane, before anything else, then runs every lane until ctx ends (with
// once, until each lane has nothing left). The first lane to fail stops
// the others.
func (ls *Lanes) Run(ctx context.Context, once bool) error {
	if err := ls.suspectsAlone(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(ls.lanes))
	for _, q := range ls.lanes {
		go func() {
			err := q.Run(ctx, once)
			if err != nil {
				cancel()
			}
			errs <- err
		}()
	}
	var first error
	for range ls.lanes {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// suspectsAlone delivers the files deliverd died with in hand, one at a
// time, each to its own target (alone.go), while no lane runs: a death
// then counts against the one file in hand, whatever its target.
func (ls *Lanes) suspectsAlone(ctx context.Context) error {
	lead := ls.lead
	lead.mu.Lock()
	n := len(lead.suspects)
	lead.mu.Unlock()
	if n == 0 {
		return nil
	}
	names, _, err := lead.S.Ready(spool.Pickup)
	if err != nil {
		return err
	}
	beat := liveness.Register("deliverd suspects", lead.stallBudget())
	defer beat.Close()
	for _, name := range names {
		id, _ := spool.IDOf(name)
		if !lead.suspected(id) || ctx.Err() != nil {
			continue
		}
		lead.mu.Lock()
		delete(lead.suspects, id)
		lead.mu.Unlock()
		if err := ls.laneOf(spool.Pickup, name).deliverAlone(ctx, beat, name, id); err != nil {
			return err
		}
	}
	return nil
}

// mine keeps the names of folder whose files belong to q's lane.
func (q *Queue) mine(folder string, names []string) []string {
	ls := q.lanes
	if ls == nil || len(ls.lanes) == 1 {
		return names
	}
	kept := names[:0:0]
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		key, target := ls.targetOf(folder, name)
		seen[key] = true
		if ls.laneName(target) == q.lane {
			kept = append(kept, name)
		}
	}
	ls.forget(folder, seen)
	return kept
}

// laneOf is the queue that delivers the file name of folder.
func (ls *Lanes) laneOf(folder, name string) *Queue {
	if len(ls.lanes) == 1 {
		return ls.lead
	}
	_, target := ls.targetOf(folder, name)
	return ls.lanes[ls.laneName(target)]
}

// laneName is the lane of a file naming target: its own, or the
// default lane's for none or one not configured.
func (ls *Lanes) laneName(target string) string {
	if _, ok := ls.lanes[target]; ok {
		return target
	}
	return config.DefaultTarget
}

// known reports whether target ("" for none) is configured.
func (ls *Lanes) known(target string) bool {
	_, ok := ls.lanes[target]
	return target == "" || ok
}

// targetOf returns the cache key of a file and the target its envelope
// names, read once per version of the file (name and mtime). A file that
// cannot be read names none: the default lane meets the error.
func (ls *Lanes) targetOf(folder, name string) (key, target string) {
	path := filepath.Join(ls.lead.S.Dir(folder), name)
	key = folder + "/" + name
	fi, err := os.Stat(path)
	if err != nil {
		return key, ""
	}
	key += "\x00" + fi.ModTime().String()
	ls.mu.Lock()
	target, ok := ls.names[key]
	ls.mu.Unlock()
	if ok {
		return key, target
	}
	target = readTarget(path)
	ls.mu.Lock()
	ls.names[key] = target
	ls.mu.Unlock()
	return key, target
}

// forget drops the cached files of folder not among seen.
func (ls *Lanes) forget(folder string, seen map[string]bool) {
	prefix := folder + "/"
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for k := range ls.names {
		if strings.HasPrefix(k, prefix) && !seen[k] {
			delete(ls.names, k)
		}
	}
}

// readTarget is the X-Popspool-Target of the file at path, "" for none
// or an unreadable file.
func readTarget(path string) string {
	f, err := spool.OpenFile(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	env, _ := envelope.Read(bufio.NewReaderSize(f, 4096))
	return env.Target
}

// elsewhere handles a claimed file that is not for q's lane (changed by
// hand since the lane chose it): one naming an unknown target is
// deferred, one naming another lane's goes back to pickup/ for that lane.
// It reports whether it took the file.
func (q *Queue) elsewhere(path, id string, env envelope.Envelope, rcpts []string, at attempt) (bool, error) {
	ls := q.lanes
	switch {
	case ls == nil || ls.laneName(env.Target) == q.lane && ls.known(env.Target):
		return false, nil
	case !ls.known(env.Target):
		return true, q.unknownTarget(path, id, env, rcpts, at)
	}
	at.release()
	if _, err := q.S.Move(path, spool.Pickup, id); err != nil {
		return true, q.putBack(path, id, err)
	}
	q.settled(id)
	return true, nil
}

// unknownTarget defers a file that names a target the config does not
// have: each recipient counts as temporarily failed, on the default
// lane's retry schedule, and expires into a DSN as any deferral does.
// Nothing is sent anywhere else: the wrong server might accept it.
func (q *Queue) unknownTarget(path, id string, env envelope.Envelope, rcpts []string, at attempt) error {
	text := fmt.Sprintf("delivery target %q (X-Popspool-Target) is not in the config (targets: %s)", env.Target, strings.Join(q.lanes.Names(), ", "))
	event.Emit(&q.Log, event.TargetUnknown).Str("id", id).Str("target_name", env.Target).Strs("targets", q.lanes.Names()).
		Msg("deferred; add [target." + env.Target + "] to the config, or correct the X-Popspool-Target line, then mv deferred/" + id + ".eml pickup/")
	out := make([]Outcome, 0, len(rcpts))
	for _, r := range rcpts {
		out = append(out, Outcome{Rcpt: r, Temp: true, Text: text})
	}
	return q.settle(path, id, env, out, at)
}
