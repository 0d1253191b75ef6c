package queue

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"example.org/popspool/shared/spool"
)

// dueDeferred lists deferred/ files whose next attempt has come, and how
// long until the next one that has not.
func (q *Queue) dueDeferred() (due []string, next time.Duration, err error) {
	names, _, err := q.S.Ready(spool.Deferred)
	if err != nil {
		return nil, 0, err
	}
	names = q.mine(spool.Deferred, names)
	if q.due == nil {
		q.due = map[string]time.Time{}
	}
	seen := map[string]bool{}
	now := q.now()
	for _, n := range names {
		key, at := q.nextAttempt(n)
		seen[key] = true
		if !at.After(now) {
			due = append(due, n)
			continue
		}
		if d := at.Sub(now); next == 0 || d < next {
			next = d
		}
	}
	for k := range q.due {
		if !seen[k] {
			delete(q.due, k)
		}
	}
	return due, next, nil
}

// nextAttempt returns the cache key and the next attempt of a deferred
// file, reading its envelope only when the file is new or changed.
func (q *Queue) nextAttempt(name string) (string, time.Time) {
	path := filepath.Join(q.S.Dir(spool.Deferred), name)
	fi, err := os.Stat(path)
	if err != nil {
		return name, time.Time{}
	}
	key := name + "\x00" + fi.ModTime().String()
	if at, ok := q.due[key]; ok {
		return key, at
	}
	env, _, err := readEnvelope(path)
	if err != nil && !strings.Contains(err.Error(), "Next-Attempt") {
		return key, time.Time{}
	}
	q.due[key] = env.NextAttempt
	return key, env.NextAttempt
}
