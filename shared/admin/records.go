package admin

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"example.org/popspool/shared/journal"
	"example.org/popspool/shared/spool"
)

// Where the daemons keep their records (DESIGN.md, state/): one UIDL
// journal per account, deliverd's ledger, and the suspect books.
const (
	ledgerFile = "deliverd.ledger"
	uidlSuffix = ".uidl"
)

var suspectBooks = []string{"rewrited", "deliverd"}

// fetchRecord is what a UIDL journal says of a message: fetchd's record
// "F <uidl-hex> <id> <unix-time>" (or "S", a stub of an oversize
// message whose whole stays on the server).
type fetchRecord struct {
	account string
	journal string
	uidl    string
	at      time.Time
	stub    bool
}

// findFetch looks for id in every state/*.uidl journal, read-only.
func findFetch(root, id string) (found []fetchRecord, problems []string) {
	paths, _ := filepath.Glob(filepath.Join(root, spool.State, "*"+uidlSuffix))
	sort.Strings(paths)
	for _, p := range paths {
		recs, skipped, err := journal.Read(p)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if skipped > 0 {
			problems = append(problems, fmt.Sprintf("%s: %d damaged record(s) skipped", p, skipped))
		}
		for _, r := range recs {
			if len(r) >= 4 && (r[0] == "F" || r[0] == "S") && r[2] == id {
				found = append(found, fetchRecord{account: strings.TrimSuffix(filepath.Base(p), uidlSuffix),
					journal: p, uidl: unhex(r[1]), at: unix(r[3]), stub: r[0] == "S"})
			}
		}
	}
	return found, problems
}

func unhex(s string) string {
	b, err := hex.DecodeString(s)
	if err != nil {
		return s
	}
	return string(b)
}

func unix(s string) time.Time {
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

// ledgerRecords returns the ledger's records about id, in order, and the
// records of other messages that name id as their DSN (F <orig> <code>
// <id> <rcpt>): then id is a delivery status notification.
func ledgerRecords(root, id string) (mine, dsnFor [][]string, err error) {
	recs, _, err := journal.Read(filepath.Join(root, spool.State, ledgerFile))
	if err != nil {
		return nil, nil, err
	}
	for _, r := range recs {
		switch {
		case len(r) >= 2 && r[1] == id:
			mine = append(mine, r)
		case len(r) >= 5 && r[0] == "F" && r[3] == id:
			dsnFor = append(dsnFor, r)
		}
	}
	return mine, dsnFor, nil
}

// delivered reports whether the ledger has a D record for id.
func delivered(recs [][]string) bool {
	for _, r := range recs {
		if r[0] == "D" {
			return true
		}
	}
	return false
}

// rcptName is the address a ledger record names: the hex of the address
// in lower case, or "~" and its SHA-256 when it was too long to record.
func rcptName(f string) string {
	if strings.HasPrefix(f, "~") {
		return "(an address too long to record; SHA-256 " + f[1:13] + "…)"
	}
	return unhex(f)
}

// attempt is one delivery attempt as the ledger tells it.
type attempt struct {
	n        string   // the attempt number of the S record; "" for records before any S
	outcomes []string // what came of it
}

// attempts groups the ledger records of a message by attempt: each S
// starts one; R, F, W and D records tell what came of it.
func attempts(recs [][]string) []attempt {
	var out []attempt
	cur := func() *attempt {
		if len(out) == 0 {
			out = append(out, attempt{})
		}
		return &out[len(out)-1]
	}
	for _, r := range recs {
		if r[0] == "S" {
			n := "1"
			if len(r) > 2 {
				n = r[2]
			}
			out = append(out, attempt{n: n})
			continue
		}
		if text := outcome(r); text != "" {
			a := cur()
			a.outcomes = append(a.outcomes, text)
		}
	}
	return out
}

// outcome says what one ledger record means.
func outcome(r []string) string {
	switch r[0] {
	case "R":
		if len(r) > 2 {
			return "accepted by " + rcptName(r[2]) + " (the others were not)"
		}
	case "D":
		return "delivered: every recipient accepted it"
	case "W":
		return "outcome unknown: the connection was lost after the final dot, before the reply (RFC 1047); retried"
	case "F":
		return failure(r)
	}
	return ""
}

func failure(r []string) string {
	code := ""
	if len(r) > 2 {
		code = r[2]
	}
	var s string
	switch code {
	case "compacted":
		s = "failed (the ledger was compacted since: the reply code of this attempt is no longer recorded)"
	case "net":
		s = "failed without a reply code (connection, TLS or protocol error)"
	default:
		s = "failed, reply code " + code + " (the reply text is not recorded)"
	}
	if len(r) >= 5 {
		s += "; delivery status notification " + r[3] + " for " + rcptName(r[4])
	}
	return s
}

// suspectDeaths returns, per daemon, what its suspect book says of id:
// "A <id> <t>" records (it was handled alone from then) and "N <id>
// t1,t2" (deaths carried over).
func suspectDeaths(root, id string) []string {
	var out []string
	for _, d := range suspectBooks {
		recs, _, err := journal.Read(filepath.Join(root, spool.State, d+".suspects"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			out = append(out, err.Error())
			continue
		}
		for _, r := range recs {
			if len(r) < 2 || r[1] != id {
				continue
			}
			switch {
			case r[0] == "N" && len(r) > 2:
				out = append(out, fmt.Sprintf("%s died %d time(s) while it had this message alone in hand (at %s)", d, len(strings.Split(r[2], ",")), times(r[2])))
			case r[0] == "A" && len(r) > 2:
				out = append(out, fmt.Sprintf("%s began handling it alone at %s (after a restart)", d, stamp(unix(r[2]))))
			case r[0] == "C":
				out = append(out, d+" finished handling it alone")
			}
		}
	}
	return out
}

func times(list string) string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		out = append(out, stamp(unix(s)))
	}
	return strings.Join(out, ", ")
}

// stamp is how show writes a time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "(no time)"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
