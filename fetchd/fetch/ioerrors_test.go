package fetch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/spool"
	"example.org/popspool/shared/spool/faultfs"
	"example.org/popspool/spooltest/pop3srv"
)

// TestIOErrors fails each spool and journal call of a fetchd poll in turn
// (faultfs.Faults: ENOSPC on create, write and fsync; EIO on every kind),
// lets fetchd go on as its loop would (poll again, or stop when it says
// it must), then restarts it on the real file system and polls until the
// mailbox is empty. Every message must then be in incoming/ once, whole,
// nothing left in tmp/fetchd, and no failed fsync retried. A failed fsync
// cuts the file back (faultfs), so a DELE sent for a message whose copy
// was not durable shows as a loss.
//
// It runs twice: with the four messages in one batch, and in batches of
// two, so that faults also hit a batch made durable while the next one
// downloads (flight.go), and its handling covers both batches.
func TestIOErrors(t *testing.T) {
	t.Run("one batch", func(t *testing.T) { testIOErrors(t, 0, 35) })
	t.Run("batches in flight", func(t *testing.T) { testIOErrors(t, 2, 45) })
}

// testIOErrors injects every fault at every call with batches of batch
// messages (0: the default) and wants at least least faults injected.
func testIOErrors(t *testing.T, batch, least int) {
	msgs := ioMessages()
	injected, lost, retried, stops := 0, 0, 0, 0
	perKind := map[string]int{}
	for _, fault := range faultfs.Faults {
		for k := 1; ; k++ {
			r := newIORun(t, msgs)
			r.batch = batch
			f := faultfs.New(fault, k)
			stopped := r.pollFaulty(f)
			if f.Hit() == "" {
				break
			}
			injected++
			perKind[fault.String()]++
			if stopped {
				stops++
			}
			retried += f.Retried()
			if bad := r.restartAndCheck(); bad != "" {
				lost++
				t.Errorf("%s #%d (%s): %s", fault, k, filepath.Base(f.Hit()), bad)
			}
		}
	}
	t.Logf("ioerrors: daemon=fetchd batch=%d injected=%d lost=%d fsync_retried=%d stops=%d per_fault=%v", batch, injected, lost, retried, stops, perKind)
	// One batch: 37 calls since the data of a batch is synced by one
	// group sync rather than an fsync per message.
	if injected < least || retried > 0 {
		t.Fatalf("injected %d, fsync retried %d", injected, retried)
	}
}

// TestIOErrorsCatchIgnoredSync proves the check has teeth: a daemon that
// went on after a failed sync of its messages' data (the batch's group
// sync), as if it had worked, loses mail. (An ignored failed fsync of the
// journal cuts records off, which fetches a message twice, not loses it.)
func TestIOErrorsCatchIgnoredSync(t *testing.T) {
	msgs := ioMessages()
	for k := 1; k <= 4; k++ {
		r := newIORun(t, msgs)
		f := faultfs.New(faultfs.Fault{Kind: faultfs.SyncGroup, Err: syscall.EIO}, k)
		r.pollFaulty(ignoreSync{f})
		if r.restartAndCheck() != "" {
			return
		}
	}
	t.Fatal("with failed syncs ignored no message was lost: the check is blind")
}

// ignoreSync hides failed file fsyncs and group syncs (their data is cut
// back all the same).
type ignoreSync struct{ *faultfs.FS }

func (i ignoreSync) SyncFile(f *os.File) error {
	i.FS.SyncFile(f)
	return nil
}

func (i ignoreSync) SyncGroup(anchor *os.File, paths []string) error {
	i.FS.SyncGroup(anchor, paths)
	return nil
}

// ioMessages are four messages; one spans several buffered writes.
func ioMessages() map[string]string {
	msgs := map[string]string{}
	for i := 1; i <= 4; i++ {
		body := fmt.Sprintf("body %d\r\n", i)
		if i == 2 {
			body = strings.Repeat("a line of a long message, one of many\r\n", 4000) // 156 KB
		}
		msgs[fmt.Sprintf("uid-%d", i)] = fmt.Sprintf("From: a@example.net\r\nSubject: %d\r\n\r\n%s", i, body)
	}
	return msgs
}

type ioRun struct {
	t    *testing.T
	box  string
	root string
	cfg  *config.Config
	msgs map[string]string
	// batch, if set, is the batch size of the faulty polls.
	batch int
}

func newIORun(t *testing.T, msgs map[string]string) *ioRun {
	dir := t.TempDir()
	r := &ioRun{t: t, box: filepath.Join(dir, "box"), root: filepath.Join(dir, "spool"), msgs: msgs}
	_, r.cfg = testAccount(t, dir, msgs)
	return r
}

// testAccount serves msgs (uidl -> message) from dir/box on the spooltest
// POP3 server and returns it with a config of one account, "office", for
// it.
func testAccount(t *testing.T, dir string, msgs map[string]string) (*pop3srv.Server, *config.Config) {
	t.Helper()
	box := filepath.Join(dir, "box")
	os.Mkdir(box, 0o700)
	for uid, m := range msgs {
		os.WriteFile(filepath.Join(box, uid+".eml"), []byte(m), 0o600)
	}
	srv := &pop3srv.Server{Dir: box, User: "u", Pass: "p"}
	addr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("p\n"), 0o600)
	cfg := &config.Config{Account: []config.Account{{Name: "office", Server: addr.String(), TLS: "none",
		AllowPlaintext: true, Username: "u", PasswordFile: pass, Timeout: config.Duration(5 * time.Second),
		MaxSize: 50 << 20, Routing: config.Routing{DeliverTo: []string{"a@l"}}}}}
	return srv, cfg
}

// pollFaulty runs fetchd through fs as its loop would: up to three polls,
// stopping at an error that says fetchd must exit. It reports whether it
// stopped so.
func (r *ioRun) pollFaulty(fs spool.FS) bool {
	s, err := spool.Open(r.root, "fetchd", zerolog.Nop())
	if err != nil {
		r.t.Fatal(err)
	}
	defer s.Close()
	s.SetFS(fs)
	f, err := New(s, r.cfg, zerolog.Nop())
	if err != nil {
		return true // could not start: the service manager starts it again
	}
	defer f.Close()
	f.batchSize = r.batch
	for range 3 {
		_, err := f.Poll(context.Background(), &r.cfg.Account[0])
		if kindOf(err) == failFatal {
			return true
		}
	}
	return false
}

// restartAndCheck starts fetchd again on the real file system, polls
// until the mailbox is empty, and says what is wrong.
func (r *ioRun) restartAndCheck() string {
	s, err := spool.Open(r.root, "fetchd", zerolog.Nop())
	if err != nil {
		r.t.Fatal(err)
	}
	defer s.Close()
	f, err := New(s, r.cfg, zerolog.Nop())
	if err != nil {
		return "restart: " + err.Error()
	}
	defer f.Close()
	for i := 0; i < 20 && boxSize(r.box) > 0; i++ {
		_, err := f.Poll(context.Background(), &r.cfg.Account[0])
		if err != nil && strings.Contains(err.Error(), "[IN-USE]") {
			// The test server has not yet seen the cut session end.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if err != nil {
			return "poll after restart: " + err.Error()
		}
	}
	if n := boxSize(r.box); n > 0 {
		return fmt.Sprintf("%d messages still on the server", n)
	}
	for uid, m := range r.msgs {
		if n := copiesIn(filepath.Join(r.root, "incoming"), m); n != 1 {
			return fmt.Sprintf("%s is in incoming/ %d times", uid, n)
		}
	}
	entries, _ := os.ReadDir(s.TmpDir())
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			return "tmp/fetchd not empty: " + e.Name()
		}
	}
	return ""
}

func boxSize(box string) int {
	entries, _ := os.ReadDir(box)
	return len(entries)
}
