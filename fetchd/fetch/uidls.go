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
// a UIDL. "A <uidl-hex> <attempts> <unix-time>" counts the failed downloads
// of a message not yet fetched (failures.go); the last one counts, and an F
// or S record of the UIDL ends it. Older fetchds skip A records, so a
// journal stays readable both ways.
type uidls struct {
	j        *journal.Journal
	path     string
	fs       journal.FS
	seen     map[string]record // by UIDL
	attempts map[string]int    // failed downloads, by UIDL not in seen
	torn     int64
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
	u := &uidls{j: j, path: path, fs: s.FS(), torn: torn}
	u.load(recs)
	return u, nil
}

// load replaces what u knows by what recs say.
func (u *uidls) load(recs [][]string) {
	u.seen, u.attempts = map[string]record{}, map[string]int{}
	for _, r := range recs {
		u.apply(r)
	}
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
		delete(u.attempts, string(b))
	case r[0] == "A" && len(r) >= 3:
		if n, err := strconv.Atoi(r[2]); err == nil && n >= 0 {
			u.attempts[string(b)] = n
		}
	case r[0] == "X":
		delete(u.seen, string(b))
		delete(u.attempts, string(b))
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

// addAttempts buffers the count of failed downloads of uidl; it is
// durable after sync.
func (u *uidls) addAttempts(uidl string, n int, at time.Time) error {
	r := attemptFields(uidl, n, at)
	if err := u.j.Append(r...); err != nil {
		return err
	}
	u.apply(r)
	return nil
}

func attemptFields(uidl string, n int, at time.Time) []string {
	return []string{"A", hex.EncodeToString([]byte(uidl)), strconv.Itoa(n), strconv.FormatInt(at.Unix(), 10)}
}

func (u *uidls) sync() error { return u.j.Sync() }

// take takes the buffered records for a sync in another goroutine (a
// batch in flight): write writes and fsyncs them while the next records
// are buffered. No other sync, reopen or compaction may run meanwhile.
func (u *uidls) take() (write func() error) {
	j, b := u.j, u.j.Take()
	return func() error { return j.WriteSync(b) }
}

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
	u.j = j
	u.load(recs)
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

// forget drops the records (and failure counts) of UIDLs the server no
// longer lists: those messages are gone from the server and can never be
// downloaded again. It rewrites the journal when that removes any.
func (u *uidls) forget(listed map[string]bool) (int, error) {
	gone := 0
	for uidl := range u.seen {
		if !listed[uidl] {
			delete(u.seen, uidl)
			gone++
		}
	}
	for uidl := range u.attempts {
		if !listed[uidl] {
			delete(u.attempts, uidl)
			gone++
		}
	}
	if gone == 0 {
		return 0, nil
	}
	recs := make([][]string, 0, len(u.seen)+len(u.attempts))
	for uidl, r := range u.seen {
		recs = append(recs, r.fields(uidl))
	}
	now := time.Now()
	for uidl, n := range u.attempts {
		recs = append(recs, attemptFields(uidl, n, now))
	}
	u.j.Close()
	if err := journal.RewriteFS(u.path, recs, u.fs); err != nil {
		return 0, err
	}
	j, _, _, err := journal.OpenFS(u.path, u.fs)
	u.j = j
	return gone, err
}

func (u *uidls) close() error { return u.j.Close() }
