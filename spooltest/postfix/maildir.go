package postfix

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// Message is one file a Maildir received.
type Message struct {
	Path string
	Data []byte // as stored: LF line ends, Postfix's trace headers on top
}

// Received lists what each test address's Maildir holds (new/ and cur/),
// by address, sorted by file name. Addresses with nothing are left out.
func (s *Server) Received() (map[string][]Message, error) {
	all := map[string][]Message{}
	for _, u := range s.Users {
		addr := s.Address(u)
		msgs, err := s.Messages(addr)
		if err != nil {
			return nil, err
		}
		if len(msgs) > 0 {
			all[addr] = msgs
		}
	}
	return all, nil
}

// Messages lists what the Maildir of addr holds.
func (s *Server) Messages(addr string) ([]Message, error) {
	var out []Message
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(s.MaildirOf(addr), sub)
		ents, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			out = append(out, Message{Path: p, Data: b})
		}
	}
	sort.Slice(out, func(i, j int) bool { return filepath.Base(out[i].Path) < filepath.Base(out[j].Path) })
	return out, nil
}

// Count is the number of messages in all Maildirs.
func (s *Server) Count() int {
	all, _ := s.Received()
	n := 0
	for _, m := range all {
		n += len(m)
	}
	return n
}

// Queued counts the messages still in Postfix's queue (not yet delivered
// or deferred by Postfix itself). Files a killed cleanup(8) left half
// written are not counted: a queue file is complete once its owner
// execute bit is set (MAIL_QUEUE_STAT_READY, 0700), and qmgr never
// delivers one without it. Only an unfinished file that has not changed
// for staleAfter counts as left behind; a fresh one may still be written.
// Such leftovers are what a Stop in the middle of a transaction leaves in
// incoming/, e.g. the temporary "514530.13021" that postsuper then calls a
// "bogus file name" at the next Start.
func (s *Server) Queued() int {
	n := 0
	for _, q := range []string{"maildrop", "incoming", "active", "deferred", "hold"} {
		_ = filepath.WalkDir(filepath.Join(s.Dir, "queue", q), func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !abandoned(d) {
				n++
			}
			return nil
		})
	}
	return n
}

// staleAfter is how long an unfinished queue file may stay unchanged
// before Queued takes it for one a killed process left behind.
const staleAfter = 5 * time.Second

func abandoned(d os.DirEntry) bool {
	fi, err := d.Info()
	if err != nil {
		return true // gone meanwhile
	}
	return fi.Mode().Perm()&0o100 == 0 && time.Since(fi.ModTime()) > staleAfter
}

// WaitCount waits until the Maildirs hold at least n messages in all and
// Postfix's queue is empty; Postfix delivers after its 250, not before.
func (s *Server) WaitCount(tb testing.TB, n int, timeout time.Duration) map[string][]Message {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.Count()
		if got >= n && s.Queued() == 0 {
			all, err := s.Received()
			if err != nil {
				tb.Fatal(err)
			}
			return all
		}
		if time.Now().After(deadline) {
			tb.Fatalf("postfix: %d of %d messages in the Maildirs after %v, %d still queued; maillog tail:\n%s",
				got, n, timeout, s.Queued(), tail(s.Log(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Body returns the message as the client sent it, as far as a Maildir can
// tell: the trace headers Postfix puts on top (Return-Path, X-Original-To,
// Delivered-To, then its own Received) taken off, and LF line ends
// (Maildir's) turned into CRLF.
func Body(data []byte) []byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	i := 0
	skip := func() {
		for i++; i < len(lines) && len(lines[i]) > 0 && (lines[i][0] == ' ' || lines[i][0] == '\t'); i++ {
		} // and its folded continuation lines
	}
	for i < len(lines) && hasAnyPrefix(lines[i], "Return-Path:", "X-Original-To:", "Delivered-To:") {
		skip()
	}
	if i < len(lines) && hasAnyPrefix(lines[i], "Received:") {
		skip()
	}
	rest := bytes.Join(lines[i:], nil)
	return bytes.ReplaceAll(rest, []byte("\n"), []byte("\r\n"))
}

func hasAnyPrefix(line []byte, prefixes ...string) bool {
	for _, p := range prefixes {
		if bytes.HasPrefix(line, []byte(p)) {
			return true
		}
	}
	return false
}

// Header returns the first value of header name in a stored message,
// folded lines joined (RFC 5322 §2.2.3).
func Header(data []byte, name string) string {
	head, _, _ := bytes.Cut(data, []byte("\n\n"))
	lines := strings.Split(string(head), "\n")
	for i, l := range lines {
		k, v, ok := strings.Cut(l, ":")
		if !ok || !strings.EqualFold(k, name) {
			continue
		}
		for _, c := range lines[i+1:] {
			if c == "" || (c[0] != ' ' && c[0] != '\t') {
				break
			}
			v += " " + strings.TrimSpace(c)
		}
		return strings.TrimSpace(v)
	}
	return ""
}

var queueIDRe = regexp.MustCompile(`\(Postfix\) with \S+ id ([0-9A-Za-z]+)`)

// QueueID returns the id of the Postfix queue file a stored message was
// delivered from, read from the Received header Postfix put on top ("by
// mx.popspool.test (Postfix) with ESMTP id 4dQ2Fz3Q1bz9vBk"); "" if there
// is none. Each transaction Postfix accepts gets its own queue file, so
// two copies with one queue id are Postfix delivering its queue file
// twice (it was stopped between its delivery agent's write and the queue
// file's update, and redelivered what it found in active/ at the next
// start), not a client sending the message twice.
func QueueID(data []byte) string {
	m := queueIDRe.FindStringSubmatch(Header(data, "Received"))
	if m == nil {
		return ""
	}
	return m[1]
}

// String lists the Maildirs' contents, for failure messages.
func String(all map[string][]Message) string {
	var b strings.Builder
	for _, k := range sortedKeys(all) {
		fmt.Fprintf(&b, "%s: %d\n", k, len(all[k]))
	}
	return b.String()
}
