package config

import (
	"regexp"
	"strconv"
	"strings"
)

// lines maps dotted keys to the line they are written on, so validation
// errors can name the line. The TOML library does not expose key
// positions. Keys of array tables carry the table's index
// ("account.1.tls") and also its name when the table has one
// ("account.office.tls").
type lines struct {
	at map[string]int
}

var (
	headerRe = regexp.MustCompile(`^\s*(\[\[?)\s*([A-Za-z0-9_.\-]+)\s*\]\]?`)
	keyRe    = regexp.MustCompile(`^\s*([A-Za-z0-9_\-]+)\s*=\s*(.*)$`)
	nameRe   = regexp.MustCompile(`^["']([^"']*)["']`)
)

func locate(text string) *lines {
	l := &lines{at: map[string]int{}}
	count := map[string]int{}
	table, alias := "", ""
	for i, s := range strings.Split(text, "\n") {
		n := i + 1
		if m := headerRe.FindStringSubmatch(s); m != nil {
			table, alias = m[2], ""
			if m[1] == "[[" {
				table = m[2] + "." + strconv.Itoa(count[m[2]])
				count[m[2]]++
			}
			l.set(table, n)
			continue
		}
		m := keyRe.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		key := join(table, m[1])
		l.set(key, n)
		if m[1] == "name" && strings.Count(table, ".") == 1 {
			if nm := nameRe.FindStringSubmatch(m[2]); nm != nil {
				alias = strings.SplitN(table, ".", 2)[0] + "." + nm[1]
				l.set(alias, l.at[table])
			}
		}
		if alias != "" {
			l.set(join(alias, m[1]), n)
		}
	}
	return l
}

func join(table, key string) string {
	if table == "" {
		return key
	}
	return table + "." + key
}

func (l *lines) set(key string, n int) {
	if _, ok := l.at[key]; !ok {
		l.at[key] = n
	}
}

// find returns the line of key, or of its nearest enclosing table, or 0.
// A key without an index ("account.typo", as the TOML library reports
// unknown keys of array tables) matches its first occurrence in any table.
func (l *lines) find(key string) int {
	for k := key; k != ""; k = parent(k) {
		if n, ok := l.at[k]; ok {
			return n
		}
		if n := l.anyIndex(k); n > 0 {
			return n
		}
	}
	return 0
}

func (l *lines) anyIndex(key string) int {
	head, rest, ok := strings.Cut(key, ".")
	if !ok {
		return 0
	}
	best := 0
	for i := 0; ; i++ {
		n, found := l.at[head+"."+strconv.Itoa(i)+"."+rest]
		if _, table := l.at[head+"."+strconv.Itoa(i)]; !table {
			return best
		}
		if found && (best == 0 || n < best) {
			best = n
		}
	}
}

func parent(key string) string {
	i := strings.LastIndexByte(key, '.')
	if i < 0 {
		return ""
	}
	return key[:i]
}
