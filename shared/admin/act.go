package admin

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
)

// The admin commands that move mail do what an operator's mv does, by the
// daemons' own protocol: a no-replace rename, then an fsync of both
// folders. A rename is also how a daemon claims a file, so a command and a
// daemon never both take one: whoever renames first has it, and the other
// finds it gone. Each action is recorded in status/actions.log.

// HoldPrefix marks a held message: the daemons ignore names starting with
// a dot, so ".hold-<id>.eml" stays in its folder untouched until released.
const HoldPrefix = ".hold-"

// located is one file of a message in the spool.
type located struct {
	folder string
	name   string // as found: <id>.eml, <id>-N.eml or .hold-<id>.eml
	held   bool
}

func (l located) String() string { return l.folder + "/" + l.name }

// queueFolders are where a message may wait, in the order of the flow.
var queueFolders = []string{spool.Incoming, spool.Pickup, spool.Deferred, spool.Failed, spool.Badmail, spool.Duplicates}

// idArg turns what an operator typed (an id, a file name, a path) into an
// id.
func idArg(arg string) (string, error) {
	name := strings.TrimPrefix(filepath.Base(arg), HoldPrefix)
	id := strings.TrimSuffix(name, ".eml")
	if i := strings.IndexByte(id, '-'); i > 0 {
		id = id[:i] // <id>-N.eml, a copy stored beside another
	}
	if !spool.ValidID(id) {
		return "", fmt.Errorf("%q is not a message id (26 letters and digits, as in queue's first column)", arg)
	}
	return id, nil
}

// locateFiles finds the files of message id in the queue folders.
func locateFiles(root, id string) ([]located, error) {
	var found []located
	for _, folder := range queueFolders {
		dir := filepath.Join(root, folder)
		for _, pattern := range []string{id + "*.eml", HoldPrefix + id + "*.eml"} {
			names, err := filepath.Glob(filepath.Join(dir, pattern))
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				base := filepath.Base(n)
				if got, _ := idArg(base); got == id {
					found = append(found, located{folder: folder, name: base, held: strings.HasPrefix(base, HoldPrefix)})
				}
			}
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("no message %s in %s (a message being worked on is in tmp/ for a moment; try again)", id, strings.Join(queueFolders, "/, ")+"/")
	}
	return found, nil
}

// Actions acts on the messages of one spool and reports on out.
type Actions struct {
	s     *spool.Spool
	out   io.Writer
	audit *os.File
	log   zerolog.Logger
}

// Open returns Actions on the spool at root; Close it.
func Open(root string, out io.Writer) (*Actions, error) {
	s, err := spool.Attach(root, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(root, spool.Status, "actions.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("the record of admin actions: %w", err)
	}
	log := zerolog.New(f).With().Timestamp().Str("by", operator()).Logger()
	return &Actions{s: s, out: out, audit: f, log: log}, nil
}

// Close closes the record of actions, making it durable.
func (a *Actions) Close() error {
	err := a.audit.Sync()
	return errors.Join(err, a.audit.Close())
}

// operator names who runs the command, for the record.
func operator() string {
	if u := os.Getenv("SUDO_USER"); u != "" {
		return u + " (sudo)"
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return fmt.Sprint(os.Getuid())
}

// requeueTo is where requeue sends a message from each folder: deliverd
// tries deferred and badmail at once, rewrited routes failed again.
var requeueTo = map[string]string{
	spool.Deferred: spool.Pickup,
	spool.Badmail:  spool.Pickup,
	spool.Failed:   spool.Incoming,
	// A copy the duplicate filter kept has its envelope: delivered anyway.
	spool.Duplicates: spool.Pickup,
}

// Requeue sends each message back into the flow: held ones are released,
// deferred and badmail ones go to pickup/, failed ones to incoming/. It
// returns how many it moved; an error names the first that could not be.
func (a *Actions) Requeue(args []string) (int, error) {
	return a.each(args, func(l located, id string) (bool, error) {
		if l.held {
			if err := a.unhold(l, id); err != nil {
				return false, err
			}
			l = located{folder: l.folder, name: strings.TrimPrefix(l.name, HoldPrefix)}
		}
		to, ok := requeueTo[l.folder]
		if !ok {
			fmt.Fprintf(a.out, "%s: in %s/ already, taken in turn\n", id, l.folder)
			return false, nil
		}
		return true, a.move(l, id, to, "requeue")
	})
}

// RequeueFolder requeues every message of folder (deferred, badmail or
// failed) that is not held.
func (a *Actions) RequeueFolder(folder string, pick func(path string) bool) (int, error) {
	if _, ok := requeueTo[folder]; !ok {
		return 0, fmt.Errorf("requeue takes deferred, badmail or failed, not %q", folder)
	}
	entries, err := os.ReadDir(a.s.Dir(folder))
	if err != nil {
		return 0, err
	}
	var ids []string
	for _, e := range entries {
		id, ok := spool.IDOf(e.Name())
		if ok && !strings.HasPrefix(e.Name(), ".") && (pick == nil || pick(filepath.Join(a.s.Dir(folder), e.Name()))) {
			ids = append(ids, id)
		}
	}
	return a.Requeue(ids)
}

// Hold keeps each message where it is, untouched by the daemons, until
// Release: a message in pickup/ is not delivered, in incoming/ not routed.
func (a *Actions) Hold(args []string) (int, error) {
	return a.each(args, func(l located, id string) (bool, error) {
		if l.held {
			fmt.Fprintf(a.out, "%s: held already in %s/\n", id, l.folder)
			return false, nil
		}
		return true, a.rename(l, id, HoldPrefix+l.name, "hold")
	})
}

// Release lets each held message go on from the folder it was held in.
func (a *Actions) Release(args []string) (int, error) {
	return a.each(args, func(l located, id string) (bool, error) {
		if !l.held {
			fmt.Fprintf(a.out, "%s: not held (in %s/)\n", id, l.folder)
			return false, nil
		}
		return true, a.unhold(l, id)
	})
}

// Delete removes each message for good. It is the only copy: the message
// is no longer on the ISP's server.
func (a *Actions) Delete(args []string) (int, error) {
	return a.each(args, func(l located, id string) (bool, error) {
		path := filepath.Join(a.s.Dir(l.folder), l.name)
		fi, err := os.Stat(path)
		if err != nil {
			return false, gone(l, err)
		}
		if err := os.Remove(path); err != nil {
			return false, gone(l, err)
		}
		if err := a.s.FS().SyncDir(a.s.Dir(l.folder)); err != nil {
			return false, err
		}
		event.Emit(&a.log, event.AdminDeleted).Str("id", id).Str("from", l.String()).Int64("size", fi.Size()).Msg("deleted")
		fmt.Fprintf(a.out, "%s: deleted from %s/ (%d octets)\n", id, l.folder, fi.Size())
		return true, nil
	})
}

// each runs do on every file of every message named in args, and counts
// what it did; it goes on past a message it cannot act on and returns the
// errors joined.
func (a *Actions) each(args []string, do func(l located, id string) (bool, error)) (int, error) {
	n := 0
	var errs []error
	for _, arg := range args {
		id, err := idArg(arg)
		if err == nil {
			err = a.eachFile(id, do, &n)
		}
		if err != nil {
			errs = append(errs, err)
			fmt.Fprintf(a.out, "%s: %v\n", arg, err)
		}
	}
	return n, errors.Join(errs...)
}

func (a *Actions) eachFile(id string, do func(l located, id string) (bool, error), n *int) error {
	found, err := locateFiles(a.s.Root, id)
	if err != nil {
		return err
	}
	for _, l := range found {
		did, err := do(l, id)
		if err != nil {
			return err
		}
		if did {
			*n++
		}
	}
	return nil
}

// move renames the file into folder to, as <id>.eml (or <id>-N.eml when
// that name is taken).
func (a *Actions) move(l located, id, to, action string) error {
	dst, err := a.s.Move(filepath.Join(a.s.Dir(l.folder), l.name), to, id)
	if err != nil {
		return gone(l, err)
	}
	event.Emit(&a.log, event.AdminMoved).Str("action", action).Str("id", id).Str("from", l.String()).
		Str("to", to+"/"+filepath.Base(dst)).Msg(action)
	fmt.Fprintf(a.out, "%s: %s/ -> %s/\n", id, l.folder, to)
	return nil
}

// rename renames the file within its folder.
func (a *Actions) rename(l located, id, name, action string) error {
	dir := a.s.Dir(l.folder)
	if err := a.s.FS().RenameNoReplace(filepath.Join(dir, l.name), filepath.Join(dir, name)); err != nil {
		return gone(l, err)
	}
	if err := a.s.FS().SyncDir(dir); err != nil {
		return err
	}
	event.Emit(&a.log, event.AdminMoved).Str("action", action).Str("id", id).Str("from", l.String()).Str("to", l.folder+"/"+name).Msg(action)
	fmt.Fprintf(a.out, "%s: %s in %s/\n", id, map[string]string{"hold": "held", "release": "released"}[action], l.folder)
	return nil
}

func (a *Actions) unhold(l located, id string) error {
	return a.rename(l, id, strings.TrimPrefix(l.name, HoldPrefix), "release")
}

// gone explains a rename or removal that found no file: a daemon took it
// first (or an operator moved it), which is no harm.
func gone(l located, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s was taken by a daemon (or moved) just now; run queue to see where it is", l)
	}
	return fmt.Errorf("%s: %w", l, err)
}

// actionsOn returns the records of status/actions.log about message id,
// one line each: when, who, what.
func actionsOn(root, id string) []string {
	f, err := os.Open(filepath.Join(root, spool.Status, "actions.log"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			Time, By, Action, ID, From, To, Message string
		}
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.ID != id {
			continue
		}
		what := r.Action
		if what == "" {
			what = r.Message // delete
		}
		line := fmt.Sprintf("%s %s by %s: %s", r.Time, what, r.By, r.From)
		if r.To != "" {
			line += " -> " + r.To
		}
		out = append(out, line)
	}
	return out
}
