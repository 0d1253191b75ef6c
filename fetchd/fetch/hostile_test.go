package fetch

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/spool"
	"example.org/popspool/spooltest/faultproxy"
	"example.org/popspool/spooltest/pop3srv"
)

// Fault tests at the fetchd level: whatever the server or the disk does,
// no message is lost and none arrives twice, across the next poll.

// noParts fails if tmp/fetchd holds a download.
func noParts(t *testing.T, s *spool.Spool) {
	t.Helper()
	eml, part, other, err := s.Leftovers()
	if err != nil || len(eml)+len(part)+len(other) != 0 {
		t.Fatalf("tmp/fetchd not empty: %v %v %v %v", eml, part, other, err)
	}
}

// TestDroppedQuitReply: the server removes the messages at QUIT but the
// link drops before its +OK (pop3srv EvUpdated). The next poll finds
// nothing to fetch and nothing is duplicated.
func TestDroppedQuitReply(t *testing.T) {
	r := newRig(t)
	var drop atomic.Bool
	drop.Store(true)
	r.srv.SetFault(func(ev pop3srv.Event) bool { return drop.Load() && ev.Name == pop3srv.EvUpdated })
	if _, err := r.poll(t); err == nil || len(r.log.events(event.SessionCut)) != 1 {
		t.Fatalf("lost QUIT reply: err %v, log:\n%s", err, r.log)
	}
	if r.srv.Stats().Left != 0 {
		t.Fatal("server did not remove the messages")
	}
	drop.Store(false)
	r.reopen(t)
	st, err := r.poll(t)
	if err != nil || st.Fetched != 0 || st.Listed != 0 {
		t.Fatalf("next poll %+v %v", st, err)
	}
	r.check(t)
	noParts(t, r.s)
}

// TestDovecotDroppedQuitReply is the same against Dovecot, the link cut by
// a proxy as Dovecot's "+OK Logging out, messages deleted." comes back.
func TestDovecotDroppedQuitReply(t *testing.T) {
	var quit atomic.Bool
	r, dc, p := newDovecotRigBehindProxy(t, func(conn int, dir faultproxy.Dir, line []byte) bool {
		if dir == faultproxy.Up && strings.EqualFold(string(line), "QUIT\r\n") {
			quit.Store(true)
			return false
		}
		return conn == 1 && dir == faultproxy.Down && quit.Load()
	})
	if _, err := r.poll(t); err == nil || p.Cuts() != 1 {
		t.Fatalf("err %v, cuts %d", err, p.Cuts())
	}
	waitFor(t, 5*time.Second, "Dovecot's expunge", func() bool { return dc.Count(t, dcUser) == 0 })
	r.reopen(t)
	st, err := r.poll(t)
	if err != nil || st.Fetched != 0 {
		t.Fatalf("next poll %+v %v", st, err)
	}
	r.check(t)
}

// TestCutMidRetrLeavesNoPart: the message being received when the link
// drops is neither kept nor deleted; the next poll fetches it once.
func TestCutMidRetrLeavesNoPart(t *testing.T) {
	r := newRig(t)
	var retrs atomic.Int32
	r.srv.SetFault(func(ev pop3srv.Event) bool {
		return ev.Name == pop3srv.EvRetr && ev.Bytes > 100 && retrs.Add(1) == 1
	})
	st, err := r.poll(t)
	if err == nil || st.Deleted != 0 || r.srv.Stats().Left != 24 {
		t.Fatalf("cut poll %+v %v left %d", st, err, r.srv.Stats().Left)
	}
	noParts(t, r.s)
	r.srv.SetFault(nil)
	if _, err := r.poll(t); err != nil {
		t.Fatal(err)
	}
	r.check(t)
	if r.srv.Stats().Left != 0 {
		t.Fatal("messages left on the server")
	}
}

// TestFullDisk: the spool on a 1 MiB tmpfs, a 2 MiB message last in the
// mailbox. The session stops at it with DiskFull, keeps what it stored,
// deletes nothing it did not store, leaves no part behind; with room again
// the next poll fetches the rest once.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := filepath.Join(t.TempDir(), "fs")
	os.Mkdir(dir, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })

	r := newRig(t)
	big := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n"), 32<<10)
	big = append([]byte("Subject: big\r\n\r\n"), big...)
	os.WriteFile(filepath.Join(r.srv.Dir, "99-big.eml"), big, 0o644)
	r.want["99-big.eml"] = big
	r.s.Close()
	r.setup(t, dir, r.cfg.Account[0], "p")

	_, err := r.poll(t)
	if err == nil || kindOf(err) == failFatal || len(r.log.events(event.DiskFull)) != 1 {
		t.Fatalf("full disk: err %v kind %d, log:\n%s", err, kindOf(err), r.log)
	}
	if left := r.srv.Stats().Left; left != 25 {
		t.Fatalf("%d left on the server, want all 25 (no QUIT after the failure)", left)
	}
	if n := len(incoming(t, r.s)); n != 24 {
		t.Fatalf("%d in incoming/, want the 24 that fitted", n)
	}
	noParts(t, r.s)
	if out, err := exec.Command("mount", "-o", "remount,size=16m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	st, err := r.poll(t)
	if err != nil || st.Fetched != 1 || st.Deleted != 25 {
		t.Fatalf("with room: %+v %v", st, err)
	}
	r.check(t)
}

// TestHostileUIDLs: UIDLs that look like paths never become one (the
// journal hex-encodes them); each message arrives once.
func TestHostileUIDLs(t *testing.T) {
	uids := []string{"../../../../tmp/popspool-evil", "a/b/c", "..", ".", "-rf", strings.Repeat("z", 70), `%2e%2e\x`}
	var msgs []fakeMsg
	for i, u := range uids {
		msgs = append(msgs, fakeMessage(u, "m"+string(rune('a'+i))))
	}
	r, p := newFakeRig(t, msgs...)
	r.cfg.Account[0].Keep = true
	for i := 0; i < 2; i++ {
		st, err := r.poll(t)
		if err != nil || st.Fetched != len(uids)*(1-i) {
			t.Fatalf("poll %d: %+v %v", i, st, err)
		}
	}
	if got := len(incoming(t, r.s)); got != len(uids) {
		t.Fatalf("%d in incoming/, want %d", got, len(uids))
	}
	state, _ := os.ReadDir(r.s.Dir(spool.State))
	if len(state) != 1 || state[0].Name() != "office.uidl" {
		t.Fatalf("state/ holds %v", state)
	}
	if _, err := os.Stat("/tmp/popspool-evil"); err == nil {
		t.Fatal("a UIDL became a path")
	}
	r.cfg.Account[0].Keep = false
	if st, err := r.poll(t); err != nil || st.Deleted != len(uids) || len(p.left()) != 0 {
		t.Fatalf("delete poll %+v %v left %v", st, err, p.left())
	}
	for _, m := range incoming(t, r.s) {
		if !strings.Contains(m, "(popspool fetchd; account office; uidl ") {
			t.Fatalf("no trace header:\n%s", m)
		}
	}
}

// TestHostileReplies: a server that stalls, sends garbage or an overlong
// line, or a message that never ends: the session stops with an event,
// nothing is deleted, and once the server behaves every message arrives
// exactly once.
func TestHostileReplies(t *testing.T) {
	for _, c := range []struct {
		name  string
		cmd   string
		reply string
		act   hookAction
		ev    event.ID
	}{
		{"stall on RETR", "RETR 2", "", hookStall, event.SessionTimeout},
		{"stall mid-message", "RETR 2", "+OK\r\nSubject: x\r\n\r\nhalf", hookStall, event.SessionTimeout},
		{"garbage status", "RETR 2", "WHAT?\r\n", hookReply, event.ProtocolError},
		{"overlong status", "UIDL", "+OK " + strings.Repeat("x", 10000) + "\r\n", hookReply, event.ProtocolError},
		{"overlong listing line", "UIDL", "+OK\r\n1 " + strings.Repeat("y", 5000) + "\r\n.\r\n", hookReply, event.ProtocolError},
		{"UIDL of 71 octets", "UIDL", "+OK\r\n1 " + strings.Repeat("y", 71) + "\r\n.\r\n", hookReply, event.UIDLRejected},
		{"duplicate UIDL", "UIDL", "+OK\r\n1 same\r\n2 same\r\n.\r\n", hookReply, event.UIDLRejected},
		{"never-ending message", "RETR 2", "+OK\r\n", hookFlood, event.ProtocolError},
		{"hang-up after DELE", "DELE 1", "+OK\r\n", hookHangUp, event.SessionCut},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, p := newFakeRig(t, fakeMessage("u1", "one"), fakeMessage("u2", "two"), fakeMessage("u3", "three"))
			r.cfg.Account[0].Timeout = config.Duration(time.Second)
			r.cfg.Account[0].MaxSize = 64 << 10
			var armed atomic.Bool
			armed.Store(true)
			p.hook = func(_ int, cmd string) (string, hookAction) {
				if armed.Load() && cmd == c.cmd {
					return c.reply, c.act
				}
				return "", hookPass
			}
			if _, err := r.poll(t); err == nil {
				t.Fatal("hostile session reported success")
			}
			if len(r.log.events(c.ev)) == 0 {
				t.Fatalf("no event %d:\n%s", c.ev, r.log)
			}
			if len(p.left()) != 3 {
				t.Fatalf("server lost messages: %v", p.left())
			}
			noParts(t, r.s)
			armed.Store(false)
			if _, err := r.poll(t); err != nil {
				t.Fatalf("clean poll: %v\n%s", err, r.log)
			}
			if len(p.left()) != 0 {
				t.Fatalf("left on the server: %v", p.left())
			}
			r.check(t)
		})
	}
}

// TestNoUIDLSameHeaders: a server without UIDL, two messages with the
// same header and size but different bodies. Neither is taken for the
// other: both arrive, once, also across a session cut before QUIT.
func TestNoUIDLSameHeaders(t *testing.T) {
	dir := t.TempDir()
	box := filepath.Join(dir, "box")
	os.Mkdir(box, 0o755)
	head := "From: a@example.net\r\nSubject: same\r\n\r\n"
	r := &rig{want: map[string][]byte{}}
	for i, body := range []string{"body A\r\n", "body B\r\n", "body A\r\n"} {
		name := fmt.Sprintf("%d.eml", i)
		os.WriteFile(filepath.Join(box, name), []byte(head+body), 0o644)
		r.want[name] = []byte(head + body)
	}
	r.srv = &pop3srv.Server{Dir: box, User: "u", Pass: "p", NoUIDL: true}
	addr, err := r.srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.srv.Close() })
	r.setup(t, dir, configAccount(addr.String()), "p")
	var cut atomic.Bool
	cut.Store(true)
	r.srv.SetFault(func(ev pop3srv.Event) bool { return cut.Load() && ev.Name == pop3srv.EvCommand && ev.Cmd == "QUIT" })
	if _, err := r.poll(t); err == nil {
		t.Fatal("cut session reported success")
	}
	cut.Store(false)
	st, err := r.poll(t)
	if err != nil || st.Fetched != 0 || st.Deleted != 3 {
		t.Fatalf("second poll %+v %v", st, err)
	}
	r.check(t)
}
