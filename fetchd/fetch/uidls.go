package fetch

import (
	"encoding/hex"
	"path/filepath"
	"strconv"
	"time"

	"example.org/popspool/shared/journal"
	"example.org/popspool/shared/spool"
)

// uidls is one account's UIDL journal, state/<account>.uidl (DESIGN.md):
// a record "F <uidl-hex> <id> <unix-time>" is appended and fsynced after the
// message is sealed in tmp/fetchd and before it moves to incoming/ and is
// DELE'd. A recorded UIDL is never downloaded again; it is DELE'd again
// while the server still lists it. "S <uidl-hex> <id> <unix-time>" records
// the header-and-notice stub stored for a message over max_size (oversize
// = "headers"): the message itself stays on the server and is never
// deleted, and is fetched whole if max_size grows. "X <uidl-hex>" forgets
// a UIDL.
type uidls struct {
	j    *journal.Journal
	path string
	fs   journal.FS
	seen map[string]record // by UIDL
	torn int64
}

type record struct {
	id   string
	at   time.Time
	stub bool // only the header was stored; the message stays on the server
}

func (r record) fields(uidl string) []string {
	kind := "F"
	if r.stub {
		kind = "S"
	}
	return []string{kind, hex.EncodeToString([]byte(uidl)), r.id, strconv.FormatInt(r.at.Unix(), 10)}
}

func openUIDLs(s *spool.Spool, account string) (*uidls, error) {
	path := filepath.Join(s.Dir(spool.State), account+".uidl")
	j, recs, torn, err := journal.OpenFS(path, s.FS())
	if err != nil {
		return nil, err
	}
	u := &uidls{j: j, path: path, fs: s.FS(), seen: map[string]record{}, torn: torn}
	for _, r := range recs {
		u.apply(r)
	}
	return u, nil
}

func (u *uidls) apply(r []string) {
	if len(r) < 2 {
		return
	}
	b, err := hex.DecodeString(r[1])
	if err != nil {
		return
	}
	switch {
	case (r[0] == "F" || r[0] == "S") && len(r) >= 4:
		sec, _ := strconv.ParseInt(r[3], 10, 64)
		u.seen[string(b)] = record{id: r[2], at: time.Unix(sec, 0), stub: r[0] == "S"}
	case r[0] == "X":
		delete(u.seen, string(b))
	}
}

// add buffers a record for a sealed message; it is durable after sync.
func (u *uidls) add(uidl, id string, at time.Time) error {
	return u.append(uidl, record{id: id, at: at})
}

// addStub buffers a record for a sealed stub of an oversize message.
func (u *uidls) addStub(uidl, id string, at time.Time) error {
	return u.append(uidl, record{id: id, at: at, stub: true})
}

func (u *uidls) append(uidl string, rec record) error {
	r := rec.fields(uidl)
	if err := u.j.Append(r...); err != nil {
		return err
	}
	u.apply(r)
	return nil
}

func (u *uidls) sync() error { return u.j.Sync() }

// reopen rereads the journal from disk after a failed sync (journal.Sync:
// the records that reached the file are found again, a torn tail is cut),
// so that seen holds only what is on disk, and fsyncs it: after that, the
// records read are durable.
func (u *uidls) reopen() error {
	u.j.Close()
	j, recs, _, err := journal.OpenFS(u.path, u.fs)
	if err != nil {
		return err
	}
	u.j, u.seen = j, map[string]record{}
	for _, r := range recs {
		u.apply(r)
	}
	return u.j.Sync()
}

// ids returns the spool ids of all records, for recovery.
func (u *uidls) ids() map[string]bool {
	m := make(map[string]bool, len(u.seen))
	for _, r := range u.seen {
		m[r.id] = true
	}
	return m
}

// forget drops the records of UIDLs the server no longer lists: those
// messages are gone from the server and can never be downloaded again. It
// rewrites the journal when that removes many.
func (u *uidls) forget(listed map[string]bool) (int, error) {
	var gone []string
	for uidl := range u.seen {
		if !listed[uidl] {
			gone = append(gone, uidl)
		}
	}
	if len(gone) == 0 {
		return 0, nil
	}
	for _, g := range gone {
		delete(u.seen, g)
	}
	recs := make([][]string, 0, len(u.seen))
	for uidl, r := range u.seen {
		recs = append(recs, r.fields(uidl))
	}
	u.j.Close()
	if err := journal.RewriteFS(u.path, recs, u.fs); err != nil {
		return 0, err
	}
	j, _, _, err := journal.OpenFS(u.path, u.fs)
	u.j = j
	return len(gone), err
}

func (u *uidls) close() error { return u.j.Close() }
