// Package spool moves messages between folders so that each is in exactly
// one committed place at every instant.
//
// It implements the handoff protocol of DESIGN.md once for all three
// daemons: a file is written in the daemon's private tmp/<daemon>/, fsynced,
// and renamed into the next folder, and both folders are fsynced, so a crash
// at any instant leaves the message either where it was or where it was
// going, never in neither and never half written.
package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/event"
)

// The committed folders and the private ones, relative to the spool root.
const (
	Incoming = "incoming"
	Pickup   = "pickup"
	Failed   = "failed"
	Deferred = "deferred"
	Badmail  = "badmail"
	// Duplicates holds the files rewrited's duplicate filter dropped for
	// every recipient, kept [filter] duplicate_keep_days for the operator.
	Duplicates = "duplicates"
	State      = "state"
	Control    = "control"
	Status     = "status"
	Tmp        = "tmp"
)

// Folders lists every folder of a spool, in creation order.
var Folders = []string{Incoming, Pickup, Failed, Deferred, Badmail, Duplicates, State, Control, Status, Tmp}

// Daemons are the names of the daemons that own a tmp/ folder.
var Daemons = []string{"fetchd", "rewrited", "deliverd"}

// Spool is one daemon's handle on the spool root.
type Spool struct {
	Root   string
	Daemon string
	log    zerolog.Logger
	lock   *os.File
	fs     FS
	spares spares
}

// Open creates missing folders, checks that they share one filesystem and
// takes the daemon's exclusive lock. It returns an error that names the
// problem; the caller logs it and exits.
func Open(root, daemon string, log zerolog.Logger) (*Spool, error) {
	s := &Spool{Root: root, Daemon: daemon, log: log, fs: OS{}}
	if err := s.makeFolders(); err != nil {
		return nil, err
	}
	if err := s.checkOneFilesystem(); err != nil {
		event.Emit(&log, event.SpoolSplit).Err(err).Msg("spool folders must be on one filesystem")
		return nil, err
	}
	lock, err := lockFile(filepath.Join(s.TmpDir(), ".lock"))
	if err != nil {
		event.Emit(&log, event.SpoolLocked).Err(err).Str("dir", s.TmpDir()).Msg("is another " + daemon + " running?")
		return nil, fmt.Errorf("lock %s: %w", s.TmpDir(), err)
	}
	s.lock = lock
	return s, nil
}

// Attach is a handle on the spool root for an operator's tool (the admin
// commands): it creates no folder and takes no lock, so it works beside
// the running daemons and never makes a folder owned by whoever ran it.
// Such a handle only moves files between the shared folders with the
// daemons' own no-replace renames and folder fsyncs.
func Attach(root string, log zerolog.Logger) (*Spool, error) {
	if fi, err := os.Stat(filepath.Join(root, Pickup)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a spool (no %s/ folder): %w", root, Pickup, errors.Join(err, os.ErrNotExist))
	}
	return &Spool{Root: root, Daemon: "admin", log: log, fs: OS{}}, nil
}

// Close releases the lock.
func (s *Spool) Close() error {
	if s.lock == nil {
		return nil
	}
	return s.lock.Close()
}

// Dir returns the path of a spool folder.
func (s *Spool) Dir(folder string) string { return filepath.Join(s.Root, folder) }

// TmpDir returns the daemon's private folder.
func (s *Spool) TmpDir() string { return filepath.Join(s.Root, Tmp, s.Daemon) }

func (s *Spool) makeFolders() error {
	dirs := []string{s.Root}
	for _, f := range Folders {
		dirs = append(dirs, s.Dir(f))
	}
	for _, d := range Daemons {
		dirs = append(dirs, filepath.Join(s.Root, Tmp, d))
	}
	for _, d := range dirs {
		_, err := os.Stat(d)
		if err == nil {
			continue
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("spool folder %s: %w", d, err)
		}
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create spool folder: %w", err)
		}
		event.Emit(&s.log, event.FolderCreated).Str("dir", d).Msg("created missing spool folder")
	}
	s.warnOpenFolders(dirs)
	return nil
}

func (s *Spool) checkOneFilesystem() error {
	want, err := device(s.Root)
	if err != nil {
		return err
	}
	for _, f := range Folders {
		got, err := device(s.Dir(f))
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s is on another filesystem than %s; renames between them would not be atomic", s.Dir(f), s.Root)
		}
	}
	return nil
}
