package spool

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

// Crockford's base32 alphabet: upper case, no I, L, O, U. Names made of it
// are safe on every filesystem, case-insensitive ones included.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// IDLen is the length of a message id: 10 characters of milliseconds since
// 1970 and 16 of randomness, the ULID layout.
const IDLen = 26

var idMu sync.Mutex
var lastID [16]byte

// NewID returns a new message id, sortable by creation time. Ids made in the
// same millisecond by one process are strictly increasing.
func NewID() string {
	idMu.Lock()
	defer idMu.Unlock()
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	if string(b[:6]) == string(lastID[:6]) {
		b = lastID
		increment(b[6:])
	} else if _, err := rand.Read(b[6:]); err != nil {
		panic("spool: no randomness: " + err.Error())
	}
	lastID = b
	return encode(b)
}

func increment(b []byte) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i]++
		if b[i] != 0 {
			return
		}
	}
}

func encode(b [16]byte) string {
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	var out [IDLen]byte
	for i := IDLen - 1; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// ValidID reports whether s is a well-formed message id.
func ValidID(s string) bool {
	if len(s) != IDLen || s[0] > '7' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(crockford, rune(s[i])) {
			return false
		}
	}
	return true
}

// IDTime returns the creation time encoded in a valid id.
func IDTime(id string) time.Time {
	var ms uint64
	for i := 0; i < 10; i++ {
		ms = ms<<5 | uint64(strings.IndexByte(crockford, id[i]))
	}
	return time.UnixMilli(int64(ms))
}

// IDOf returns the id of a spool file name such as "<id>.eml" or
// "<id>-1.eml" (a renamed collision), and whether it has one.
func IDOf(name string) (string, bool) {
	if len(name) < IDLen {
		return "", false
	}
	id := name[:IDLen]
	rest := name[IDLen:]
	if !ValidID(id) || (rest != ".eml" && !strings.HasSuffix(rest, ".eml")) {
		return "", false
	}
	return id, true
}
