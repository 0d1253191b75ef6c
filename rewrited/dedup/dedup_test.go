package dedup

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/journal"
	"example.org/popspool/shared/spool"
)

const body = "\r\nHello,\r\nthe minutes.\r\n"

func copyOf(trace, id string) string {
	h := trace + "From: Bob <bob@example.net>\r\nSubject: minutes\r\n"
	if id != "" {
		h += "Message-ID: " + id + "\r\n"
	}
	return h + body
}

func printOf(t *testing.T, msg, sender string) (Print, bool) {
	t.Helper()
	p, ok, err := Fingerprint(strings.NewReader(msg), sender)
	if err != nil {
		t.Fatal(err)
	}
	return p, ok
}

// Two copies fetched from two mailboxes differ in their trace headers and
// are the same message; another body, sender or Message-ID is another.
func TestFingerprint(t *testing.T) {
	a, ok := printOf(t, copyOf("Received: from a\r\nDelivered-To: alice@example.net\r\n", "<1@x>"), "bob@example.net")
	if !ok || a.MessageID != "<1@x>" {
		t.Fatalf("print %+v ok %v", a, ok)
	}
	b, _ := printOf(t, copyOf("Received: from b\r\nX-Popspool-Account: shop\r\n", "<1@x>"), "Bob@Example.net")
	if a.key("alice@contoso.local") != b.key("Alice@contoso.local") {
		t.Error("two copies of one message, fetched from two mailboxes, have different keys")
	}
	if a.key("alice@contoso.local") == a.key("bob@contoso.local") {
		t.Error("one key for two recipients")
	}
	for name, other := range map[string]string{
		"body":       strings.Replace(copyOf("", "<1@x>"), "minutes.", "minutes!", 1),
		"message-id": copyOf("", "<2@x>"),
	} {
		o, _ := printOf(t, other, "bob@example.net")
		if o.key("alice@contoso.local") == a.key("alice@contoso.local") {
			t.Errorf("another %s, same key", name)
		}
	}
	if o, _ := printOf(t, copyOf("", "<1@x>"), "list-bounces@example.net"); o.key("alice@contoso.local") == a.key("alice@contoso.local") {
		t.Error("another sender, same key")
	}
	folded, _ := printOf(t, "message-id:\r\n <1@x>\r\nFrom: b\r\n"+body, "bob@example.net")
	if folded.MessageID != "<1@x>" {
		t.Errorf("folded Message-ID read as %q", folded.MessageID)
	}
	if _, ok := printOf(t, copyOf("", ""), "bob@example.net"); ok {
		t.Error("a message without Message-ID has a print: it could be dropped")
	}
}

// The body is hashed as a stream: a 256 MiB message costs no more memory
// than a small one.
func TestFingerprintStreams(t *testing.T) {
	const size = 256 << 20
	r := io.MultiReader(strings.NewReader("Message-ID: <big@x>\r\nSubject: big\r\n\r\n"), io.LimitReader(zeros{}, size))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p, ok, err := Fingerprint(r, "bob@example.net")
	runtime.ReadMemStats(&after)
	if err != nil || !ok || p.MessageID != "<big@x>" {
		t.Fatal(p, ok, err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("hashing a %d MiB message allocated %d bytes", size>>20, grew)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func openSet(t *testing.T, path string, now *time.Time) *Set {
	t.Helper()
	log := zerolog.Nop()
	s, err := openAt(path, 48*time.Hour, &log, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openAt opens a set whose clock is *now, also while it loads.
func openAt(path string, window time.Duration, log *zerolog.Logger, now *time.Time) (*Set, error) {
	s := &Set{path: path, fs: spool.OS{}, window: window, Now: func() time.Time { return *now }}
	if err := s.load(log); err != nil {
		return nil, err
	}
	return s, nil
}

func filter(t *testing.T, s *Set, p Print, id string, rcpts ...string) ([]string, []Dup) {
	t.Helper()
	kept, dups, err := s.Filter(p, id, rcpts)
	if err != nil {
		t.Fatal(err)
	}
	return kept, dups
}

// Per recipient: the second copy is dropped for the recipient who got the
// first, kept for one who did not.
func TestFilterPerRecipient(t *testing.T) {
	now := time.Now()
	s := openSet(t, filepath.Join(t.TempDir(), "d"), &now)
	p, _ := printOf(t, copyOf("", "<1@x>"), "bob@example.net")
	if kept, dups := filter(t, s, p, "ID1", "alice@c"); len(kept) != 1 || len(dups) != 0 {
		t.Fatalf("first copy: kept %v dups %v", kept, dups)
	}
	kept, dups := filter(t, s, p, "ID2", "alice@c", "carol@c")
	if len(kept) != 1 || kept[0] != "carol@c" || len(dups) != 1 || dups[0] != (Dup{Rcpt: "alice@c", First: "ID1"}) {
		t.Fatalf("second copy: kept %v dups %v", kept, dups)
	}
	if kept, dups := filter(t, s, p, "ID3", "alice@c", "carol@c"); len(kept) != 0 || len(dups) != 2 || dups[1].First != "ID2" {
		t.Fatalf("third copy: kept %v dups %v", kept, dups)
	}
}

// The crash case: the record of a copy is durable, the crash comes before
// the copy moved on, and routing that same file again (its id) keeps it.
func TestOwnRetryIsNoDuplicate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d")
	now := time.Now()
	s := openSet(t, path, &now)
	p, _ := printOf(t, copyOf("", "<1@x>"), "bob@example.net")
	filter(t, s, p, "ID1", "alice@c")
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Close() // the crash: the file never left tmp/rewrited
	s = openSet(t, path, &now)
	if kept, dups := filter(t, s, p, "ID1", "alice@c"); len(kept) != 1 || len(dups) != 0 {
		t.Fatalf("the file's own retry: kept %v dups %v", kept, dups)
	}
	if kept, _ := filter(t, s, p, "ID2", "alice@c"); len(kept) != 0 {
		t.Fatal("after the retry, another copy passed")
	}
}

// A restart keeps the set; what was not synced is not relied on.
func TestRestartKeepsSet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d")
	now := time.Now()
	s := openSet(t, path, &now)
	p1, _ := printOf(t, copyOf("", "<1@x>"), "bob@example.net")
	p2, _ := printOf(t, copyOf("", "<2@x>"), "bob@example.net")
	filter(t, s, p1, "ID1", "alice@c")
	s.Sync()
	filter(t, s, p2, "ID2", "alice@c") // never synced: lost with the crash
	s.Close()
	s = openSet(t, path, &now)
	if s.Len() != 1 {
		t.Fatalf("after restart %d entries, want 1", s.Len())
	}
	if kept, dups := filter(t, s, p1, "ID3", "alice@c"); len(kept) != 0 || dups[0].First != "ID1" {
		t.Fatalf("after restart: kept %v dups %v", kept, dups)
	}
}

// Past the window a copy is delivered again, and the old records go at
// the next open.
func TestWindowExpiry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d")
	now := time.Now()
	s := openSet(t, path, &now)
	p, _ := printOf(t, copyOf("", "<1@x>"), "bob@example.net")
	filter(t, s, p, "ID1", "alice@c")
	s.Sync()
	now = now.Add(47 * time.Hour)
	if kept, _ := filter(t, s, p, "ID2", "alice@c"); len(kept) != 0 {
		t.Fatal("within the window a copy passed")
	}
	now = now.Add(2 * time.Hour)
	if kept, _ := filter(t, s, p, "ID3", "alice@c"); len(kept) != 1 {
		t.Fatal("past the window a copy was dropped")
	}
	s.Sync()
	s.Close()
	now = now.Add(49 * time.Hour)
	if s = openSet(t, path, &now); s.Len() != 0 {
		t.Fatalf("%d entries past the window, want 0", s.Len())
	}
}

// Compaction keeps the journal bounded by what is live in the window.
func TestCompactionBoundsJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d")
	now := time.Now()
	s := openSet(t, path, &now)
	appended := 0
	for i := range 10 * minCompact {
		p, _ := printOf(t, copyOf("", fmt.Sprintf("<%d@x>", i)), "b@x")
		now = now.Add(time.Minute) // 40,960 minutes in all: far more than the 48h window
		kept, _ := filter(t, s, p, fmt.Sprintf("ID%d", i), "alice@c")
		appended += len(kept)
		if i%32 == 31 {
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if appended != 10*minCompact || s.Len() > 48*60+32 {
		t.Fatalf("appended %d, live %d", appended, s.Len())
	}
	recs, _, err := journal.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) > 3*minCompact {
		t.Fatalf("journal holds %d records after %d appends, live %d", len(recs), 10*minCompact, s.Len())
	}
	if st, _ := os.Stat(path); st.Size() > 3*minCompact*100 {
		t.Fatalf("journal is %d bytes", st.Size())
	}
}
