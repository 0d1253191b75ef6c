package worker

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"example.org/popspool/rewrited/dedup"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// dupState is the worker's duplicate filter ([filter] drop_duplicates,
// rewrited/dedup): the seen set, opened on first use, and when the copies
// kept in duplicates/ were last purged.
type dupState struct {
	set    *dedup.Set
	broken bool // the set could not be used: messages pass unfiltered until restart (3026)
	purged time.Time
}

// dupOutcome is what the duplicate filter did to a plan: the recipients
// it dropped, and whether they were all of them (the file then goes to
// duplicates/ with its whole envelope, for the operator to find).
type dupOutcome struct {
	messageID string
	dropped   []dedup.Dup
	all       bool
}

// dupsFile is the seen set's journal in state/.
const dupsFile = "rewrited.dedup"

// dupSet returns the open seen set, or nil when the filter is off or
// unusable.
func (w *Worker) dupSet() *dedup.Set {
	if !w.Cfg.Filter.DropDuplicates || w.dups.broken || w.S == nil {
		return nil
	}
	if w.dups.set == nil {
		set, err := dedup.Open(filepath.Join(w.S.Dir(spool.State), dupsFile), w.S.FS(), w.Cfg.Filter.DuplicateWindow.D(), &w.Log)
		if err != nil {
			w.dupsFailed(err)
			return nil
		}
		w.dups.set = set
	}
	return w.dups.set
}

// dupsFailed turns the filter off until rewrited restarts: a filter that
// cannot remember must not drop, and must not stop the mail either.
func (w *Worker) dupsFailed(err error) {
	event.Emit(&w.Log, event.DuplicateSetFailed).Err(err).Str("file", filepath.Join(spool.State, dupsFile)).
		Msg("duplicate filter off until rewrited restarts; messages pass unfiltered")
	w.dups.broken = true
	if w.dups.set != nil {
		w.dups.set.Close()
		w.dups.set = nil
	}
}

// dedupe drops from the plan of a file going to pickup/ the recipients
// who already got the message. A message without Message-ID is never
// touched. Only local I/O errors reading the file are returned.
func (w *Worker) dedupe(path, id string, p *plan) error {
	set := w.dupSet()
	if set == nil || p.reject != nil {
		return nil
	}
	print, ok, err := fingerprint(path, p.env.Sender)
	if err != nil || !ok {
		return err
	}
	kept, dropped, err := set.Filter(print, id, p.env.Receivers)
	if err != nil {
		w.dupsFailed(err)
		return nil
	}
	if len(dropped) == 0 {
		return nil
	}
	p.dup = &dupOutcome{messageID: print.MessageID, dropped: dropped, all: len(kept) == 0}
	for _, d := range dropped {
		p.note("recipient %s already got this message (Message-ID %s) as %s: dropped as a duplicate", d.Rcpt, print.MessageID, d.First)
	}
	if !p.dup.all {
		p.env.Receivers = kept
	}
	return nil
}

// fingerprint reads the message of the file at path, after its envelope
// lines, as a stream.
func fingerprint(path, sender string) (dedup.Print, bool, error) {
	f, err := spool.OpenFile(path)
	if err != nil {
		return dedup.Print{}, false, err
	}
	defer f.Close()
	br, _, err := skipEnvelope(f, nil)
	if err != nil {
		return dedup.Print{}, false, nil // planning read the same lines; not reached
	}
	defer release(&heads, br)
	print, ok, err := dedup.Fingerprint(br, sender)
	if err != nil {
		return dedup.Print{}, false, fmt.Errorf("duplicate filter: %w", err)
	}
	return print, ok, nil
}

// syncDups makes the batch's seen records durable before its files are
// handed on.
func (w *Worker) syncDups() {
	if w.dups.set == nil {
		return
	}
	if err := w.dups.set.Sync(); err != nil {
		w.dupsFailed(err)
	}
}

func (w *Worker) closeDups() {
	if w.dups.set != nil {
		w.dups.set.Close()
		w.dups.set = nil
	}
}

// reportDups logs each recipient dropped (event 3025).
func (w *Worker) reportDups(id, dst string, p *plan) {
	if p.dup == nil {
		return
	}
	for _, d := range p.dup.dropped {
		e := event.Emit(&w.Log, event.DuplicateDropped).Str("id", id).Str("message_id", p.dup.messageID).
			Str("rcpt", d.Rcpt).Str("first_id", d.First)
		if p.dup.all {
			e.Str("path", dst).Msg("every recipient already got this message; kept in duplicates/")
		} else {
			e.Msg("recipient already got this message; not delivered to it again")
		}
	}
}

// purgeEvery is how often rewrited looks for old files in duplicates/.
const purgeEvery = time.Hour

// purgeDuplicates deletes the files in duplicates/ older than
// duplicate_keep_days (by their mtime: when they were put there), at most
// once an hour.
func (w *Worker) purgeDuplicates() {
	if !w.Cfg.Filter.DropDuplicates || time.Since(w.dups.purged) < purgeEvery {
		return
	}
	w.dups.purged = time.Now()
	dir := w.S.Dir(spool.Duplicates)
	entries, err := os.ReadDir(dir)
	if err != nil {
		w.Log.Debug().Err(err).Msg("duplicates/ not listed")
		return
	}
	cutoff := time.Now().Add(-time.Duration(w.Cfg.Filter.DuplicateKeepDays) * 24 * time.Hour)
	n := 0
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || !fi.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err == nil {
			n++
		}
	}
	if n > 0 {
		event.Emit(&w.Log, event.DuplicatesPurged).Int("files", n).Int("keep_days", w.Cfg.Filter.DuplicateKeepDays).
			Msg("deleted copies kept in duplicates/ longer than duplicate_keep_days")
	}
}
