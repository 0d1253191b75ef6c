package admin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/spool"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idAt makes a spool id of time t with n as its random part, so a test
// knows the age queue must print.
func idAt(t time.Time, n int) string {
	ms := uint64(t.UnixMilli())
	var b [26]byte
	for i := 9; i >= 0; i-- {
		b[i] = crockford[ms&31]
		ms >>= 5
	}
	r := uint64(n)
	for i := 25; i >= 10; i-- {
		b[i] = crockford[r&31]
		r >>= 5
	}
	return string(b[:])
}

// testSpool makes a spool with every folder and returns its config.
func testSpool(t testing.TB) *config.Config {
	t.Helper()
	root := filepath.Join(t.TempDir(), "spool")
	for _, f := range spool.Folders {
		if err := os.MkdirAll(filepath.Join(root, f), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range spool.Daemons {
		os.MkdirAll(filepath.Join(root, spool.Tmp, d), 0o700)
	}
	return &config.Config{Spool: root, Account: []config.Account{{Name: "office"}, {Name: "shop"}}}
}

// put writes a spool file: envelope lines, the trace fetchd adds, a
// header and a body.
func put(t testing.TB, cfg *config.Config, place, name, env, account, header string) string {
	t.Helper()
	id := strings.TrimSuffix(strings.TrimSuffix(name, ".eml"), ".part")
	var b strings.Builder
	b.WriteString(env)
	fmt.Fprintf(&b, "Received: from pop.isp.example\r\n\tby host (popspool fetchd; account %s; uidl U-%s)\r\n\twith POP3S id %s;\r\n\tMon, 07 Dec 2026 01:00:00 +0000\r\n", account, id, id)
	fmt.Fprintf(&b, "X-Popspool-Account: %s\r\n", account)
	b.WriteString(header)
	b.WriteString("\r\nbody line\r\n")
	path := filepath.Join(cfg.Spool, filepath.FromSlash(place), name)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func routed(sender string, rcpts ...string) string {
	s := "X-Sender: <" + sender + ">\r\n"
	for _, r := range rcpts {
		s += "X-Receiver: <" + r + ">\r\n"
	}
	return s
}

// fixed sets the clock for one test.
func fixed(t *testing.T, at time.Time) {
	old := now
	now = func() time.Time { return at }
	t.Cleanup(func() { now = old })
}
