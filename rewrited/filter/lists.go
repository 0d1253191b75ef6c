// Package filter is rewrited's filtering: sender and recipient block and
// allow lists, the loop guard, and an optional external filter command.
package filter

import (
	"os"
	"strings"
	"sync"
	"time"

	"example.org/popspool/shared/config"
)

// List is a set of addresses and "@domain" entries from the config and,
// optionally, a file that is read again whenever it changes.
type List struct {
	static []string
	file   string

	mu       sync.Mutex
	mtime    time.Time
	size     int64
	fromFile []string
	err      error
}

// NewList makes a list from config entries (already validated) and a file.
func NewList(entries []string, file string) *List {
	l := &List{file: file}
	for _, e := range entries {
		if n, err := config.ParseListEntry(e); err == nil {
			l.static = append(l.static, n)
		}
	}
	return l
}

// Empty reports whether the list has no entries at all.
func (l *List) Empty() bool {
	return len(l.static) == 0 && len(l.entries()) == 0
}

// Match reports whether addr, or its domain, is on the list, and which
// entry matched.
func (l *List) Match(addr string) (string, bool) {
	addr = strings.ToLower(addr)
	domain := ""
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		domain = addr[at:]
	}
	for _, set := range [][]string{l.static, l.entries()} {
		for _, e := range set {
			if e == addr || (domain != "" && e == domain) {
				return e, true
			}
		}
	}
	return "", false
}

// entries returns the file's entries, reading it again if it changed. A
// file that cannot be read keeps the last good entries (Err says why).
func (l *List) entries() []string {
	if l.file == "" {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fi, err := os.Stat(l.file)
	if err != nil {
		l.err = err
		return l.fromFile
	}
	if fi.ModTime().Equal(l.mtime) && fi.Size() == l.size {
		return l.fromFile
	}
	list, err := config.ReadListFile(l.file)
	if err != nil {
		l.err = err
		return l.fromFile
	}
	l.fromFile, l.mtime, l.size, l.err = list, fi.ModTime(), fi.Size(), nil
	return l.fromFile
}

// Err returns the last error reading the list file, if any.
func (l *List) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
