package pickup

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/emersion/go-message"

	"example.org/popspool/shared/spool"
)

// fakeLedger is the P records of a ledger.
type fakeLedger struct {
	mu     sync.Mutex
	placed map[string]bool
	fail   error
}

func (l *fakeLedger) Placing(id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return l.fail
	}
	if l.placed == nil {
		l.placed = map[string]bool{}
	}
	l.placed[id] = true
	return nil
}

func (l *fakeLedger) Placed(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.placed[id]
}

func format(t *testing.T, body string, oneByte bool) string {
	t.Helper()
	var out bytes.Buffer
	r := iotestReader(strings.NewReader(body), oneByte)
	if err := Write(&out, "a@x", []string{"b@y", "c@z"}, r); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func iotestReader(r *strings.Reader, oneByte bool) interface{ Read([]byte) (int, error) } {
	if oneByte {
		return iotest.OneByteReader(r)
	}
	return r
}

// The envelope comes first as X-Sender and X-Receiver lines; bare LFs
// become CRLF, CRLF stays, dot lines and bare CRs are untouched, and
// nothing else changes size.
func TestFormat(t *testing.T) {
	head := "X-Sender: <a@x>\r\nX-Receiver: <b@y>\r\nX-Receiver: <c@z>\r\n"
	for body, want := range map[string]string{
		"Subject: s\n\nline\n.\n..dot\n":  "Subject: s\r\n\r\nline\r\n.\r\n..dot\r\n",
		"Subject: s\r\n\r\nline\r\n.\r\n": "Subject: s\r\n\r\nline\r\n.\r\n",
		"Subject: s\r\n\nmixed\nend":      "Subject: s\r\n\r\nmixed\r\nend",
		"Subject: s\r\n\r\nbare\rcr\r\n":  "Subject: s\r\n\r\nbare\rcr\r\n",
		"\n\n":                            "\r\n\r\n",
		"":                                "",
	} {
		for _, oneByte := range []bool{false, true} {
			got := format(t, body, oneByte)
			if got != head+want {
				t.Errorf("%q (one byte reads %v): got %q, want %q", body, oneByte, got, head+want)
			}
			bare := strings.Count(body, "\n") - strings.Count(body, "\r\n")
			if len(got) != len(head)+len(body)+bare {
				t.Errorf("%q: size %d, want %d", body, len(got), len(head)+len(body)+bare)
			}
		}
	}
	if got := format(t, "x", false); !strings.HasPrefix(got, "X-Sender: <a@x>\r\n") {
		t.Errorf("got %q", got)
	}
	var out bytes.Buffer
	Write(&out, "", []string{"b@y"}, strings.NewReader(""))
	if out.String() != "X-Sender: <>\r\nX-Receiver: <b@y>\r\n" {
		t.Errorf("null sender: %q", out.String())
	}
}

type folder struct {
	*Folder
	l *fakeLedger
}

func newFolder(t *testing.T) folder {
	root := t.TempDir()
	dir := filepath.Join(root, "Pickup")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	l := &fakeLedger{}
	return folder{&Folder{Dir: dir, Ledger: l}, l}
}

func (f folder) files(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

const msg = "From: a@x\nTo: b@y\nSubject: hello\n\nbody\n"

func (f folder) deliver(t *testing.T, id string) bool {
	t.Helper()
	dup, err := f.Deliver(id, "a@x", []string{"b@y"}, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return dup
}

// checkOne: exactly one file in the pickup folder, complete and
// parseable, with the envelope in X-Sender and X-Receiver; staging empty.
func (f folder) checkOne(t *testing.T, id string) {
	t.Helper()
	if got := f.files(t, f.Dir); len(got) != 1 || got[0] != Name(id) {
		t.Fatalf("pickup folder holds %v, want [%s]", got, Name(id))
	}
	if got := f.files(t, Staging(f.Dir)); len(got) != 0 {
		t.Fatalf("staging holds %v", got)
	}
	b, err := os.ReadFile(filepath.Join(f.Dir, Name(id)))
	if err != nil {
		t.Fatal(err)
	}
	e, err := message.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if e.Header.Get("X-Sender") != "<a@x>" || e.Header.Get("X-Receiver") != "<b@y>" || e.Header.Get("Subject") != "hello" {
		t.Fatalf("header %v", e.Header)
	}
	if bytes.Contains(bytes.ReplaceAll(b, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatalf("bare LF in %q", b)
	}
}

func TestDeliver(t *testing.T) {
	f := newFolder(t)
	id := spool.NewID()
	if f.deliver(t, id) {
		t.Fatal("first delivery counted as a repeat")
	}
	f.checkOne(t, id)
	if !f.l.Placed(id) {
		t.Fatal("no P record")
	}
	if fi, err := os.Stat(Staging(f.Dir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("staging folder: %v %v", fi, err)
	}
}

// A crash at each step, then recovery (Sweep at start) and the retry:
// the message is in the pickup folder exactly once.
func TestCrashAtEachStep(t *testing.T) {
	write := func(f folder, id string, partial bool) {
		stage := filepath.Join(Staging(f.Dir), Name(id))
		os.MkdirAll(Staging(f.Dir), 0o700)
		var b bytes.Buffer
		Write(&b, "a@x", []string{"b@y"}, strings.NewReader(msg))
		data := b.Bytes()
		if partial {
			data = data[:len(data)/2]
		}
		if err := os.WriteFile(stage, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, crash := range map[string]func(f folder, id string){
		"during the staging write": func(f folder, id string) { write(f, id, true) },
		"after the staging write":  func(f folder, id string) { write(f, id, false) },
		"after the P record": func(f folder, id string) {
			write(f, id, false)
			f.l.Placing(id)
		},
		"after the rename": func(f folder, id string) {
			write(f, id, false)
			f.l.Placing(id)
			os.Rename(filepath.Join(Staging(f.Dir), Name(id)), filepath.Join(f.Dir, Name(id)))
		},
		"after linking in, before unlinking the staged copy": func(f folder, id string) {
			write(f, id, false)
			f.l.Placing(id)
			os.Link(filepath.Join(Staging(f.Dir), Name(id)), filepath.Join(f.Dir, Name(id)))
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFolder(t)
			id := spool.NewID()
			crash(f, id)
			f.Sweep()
			f.deliver(t, id)
			f.checkOne(t, id)
		})
	}
}

// After the rename the service may have taken the file already: the P
// record and the missing staged copy say it was delivered, and no second
// copy is written.
func TestTakenByServiceNotWrittenAgain(t *testing.T) {
	f := newFolder(t)
	id := spool.NewID()
	f.deliver(t, id)
	os.Remove(filepath.Join(f.Dir, Name(id))) // the service took it
	if !f.deliver(t, id) {
		t.Fatal("retry not counted as a repeat")
	}
	if got := f.files(t, f.Dir); len(got) != 0 {
		t.Fatalf("a second copy: %v", got)
	}
}

// Without a P record a staged copy may be partial: Sweep removes it. With
// one it is complete and kept for the retry to rename in.
func TestSweep(t *testing.T) {
	f := newFolder(t)
	os.MkdirAll(Staging(f.Dir), 0o700)
	partial, placed := spool.NewID(), spool.NewID()
	for _, id := range []string{partial, placed} {
		os.WriteFile(filepath.Join(Staging(f.Dir), Name(id)), []byte("X-Sender: <a@x>\r\n"), 0o600)
	}
	other := filepath.Join(Staging(f.Dir), "notes.eml")
	os.WriteFile(other, nil, 0o600)
	f.l.Placing(placed)
	if n := f.Sweep(); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	if got := f.files(t, Staging(f.Dir)); len(got) != 2 || got[0] != "notes.eml" && got[1] != "notes.eml" {
		t.Fatalf("staging holds %v", got)
	}
	if _, err := os.Stat(filepath.Join(Staging(f.Dir), Name(placed))); err != nil {
		t.Fatal("the complete staged copy was removed")
	}
}

// failRename is the real file system with RenameNoReplace failing.
type failRename struct{ spool.OS }

func (failRename) RenameNoReplace(string, string) error { return os.ErrPermission }

// A failed rename keeps the complete staged copy; the retry renames it in.
// A failed ledger record renames nothing.
func TestFailuresRetried(t *testing.T) {
	f := newFolder(t)
	id := spool.NewID()
	f.FS = failRename{}
	if _, err := f.Deliver(id, "a@x", []string{"b@y"}, strings.NewReader(msg)); err == nil {
		t.Fatal("failed rename not reported")
	}
	f.FS = nil
	f.Sweep()
	f.deliver(t, id)
	f.checkOne(t, id)

	g := newFolder(t)
	g.l.fail = errors.New("ledger broken")
	if _, err := g.Deliver(id, "a@x", []string{"b@y"}, strings.NewReader(msg)); err == nil {
		t.Fatal("failed ledger record not reported")
	}
	if got := g.files(t, g.Dir); len(got) != 0 {
		t.Fatalf("renamed in without a P record: %v", got)
	}
}
