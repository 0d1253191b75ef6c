// Package event is the catalogue of things an operator can see and act on.
//
// Every such log line carries a stable numeric "event" field. The numbers
// never change meaning; docs/events.md explains each one (what happened, the
// likely causes, what to do), and a test checks that every ID defined here is
// documented there.
package event

import (
	"fmt"
	"sort"
	"time"

	"github.com/rs/zerolog"
)

// ID is a stable event number. 1xxx: spool and daemon life cycle; 2xxx:
// fetchd; 3xxx: rewrited; 4xxx: deliverd.
type ID uint16

// Def describes one event.
type Def struct {
	ID    ID
	Name  string
	Level zerolog.Level
}

var registry = map[ID]Def{}

func def(id ID, name string, lvl zerolog.Level) ID {
	if _, dup := registry[id]; dup {
		panic(fmt.Sprintf("event %d defined twice", id))
	}
	registry[id] = Def{ID: id, Name: name, Level: lvl}
	return id
}

// Lookup returns the definition of id.
func Lookup(id ID) (Def, bool) {
	d, ok := registry[id]
	return d, ok
}

// All returns every defined event, sorted by ID.
func All() []Def {
	all := make([]Def, 0, len(registry))
	for _, d := range registry {
		all = append(all, d)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	return all
}

// Emit starts a log line for event id at the event's level. The caller adds
// fields and ends it with Msg.
func Emit(l *zerolog.Logger, id ID) *zerolog.Event {
	d, ok := registry[id]
	if !ok {
		panic(fmt.Sprintf("event %d is not defined", id))
	}
	return l.WithLevel(d.Level).Uint16("event", uint16(id))
}

// Elapsed is the field, in milliseconds, by which a line says how long
// its work took: the metrics endpoint sums it per event
// (popspool_event_duration_seconds).
const Elapsed = "elapsed_ms"

// Since is the time since start in milliseconds, for the Elapsed field.
func Since(start time.Time) float64 {
	return float64(time.Since(start)) / float64(time.Millisecond)
}
