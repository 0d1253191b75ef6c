// Package harness runs the three popspool daemons as real processes on a
// temporary spool, against the spooltest POP3 server, delivering into a
// Maildir. The demo, the end-to-end tests and the crash tests share it.
package harness

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"example.org/popspool/spooltest/pop3srv"
)

// Daemons are the three binaries, in pipeline order.
var Daemons = []string{"fetchd", "rewrited", "deliverd"}

// Root returns the project root: the folder of go.work.
func Root() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOWORK: %w", err)
	}
	w := strings.TrimSpace(string(out))
	if w == "" || w == "off" {
		return "", errors.New("not inside the popspool workspace (no go.work)")
	}
	return filepath.Dir(w), nil
}

// Build compiles the three daemons into dir and returns dir; tags are
// build tags such as "crashpoints".
func Build(dir string, tags ...string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	for _, d := range Daemons {
		cmd := exec.Command("go", "build", "-tags", strings.Join(tags, ","), "-o", filepath.Join(dir, exe(d)), ".")
		cmd.Dir = filepath.Join(root, d)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build %s: %v\n%s", d, err, out)
		}
	}
	return dir, nil
}

func exe(name string) string {
	if runtime.GOOS == "windows" {
		return name + ".exe"
	}
	return name
}

// Options shape a flow.
type Options struct {
	Account  string        // account name, default "demo"
	User     string        // local user the Maildir is for, default "alice"
	Interval time.Duration // fetchd's poll interval, default 1s
	Rescan   time.Duration // rescan interval, default 1s
	LogLevel string        // default "info"
	MaxSize  string        // the account's max_size, default "50MB"
	// Target is deliverd's [deliver] target, e.g. "smtp://127.0.0.1:2525";
	// default: a Maildir under the flow's folder (Flow.Mail).
	Target string
	// Via, if set, is given the POP3 server's address and returns the one
	// written into the config for fetchd: a fault proxy in front of it,
	// or another server (then the flow's own stays idle).
	Via func(server string) string
	// Username and Password are the POP3 account's login, written into
	// the config and served by the flow's own POP3 server; default
	// "demo@isp.example" and "demo-password".
	Username, Password string
	// DeliverTo is the account's recipient; default User@example.local.
	DeliverTo string
	// Routing, if set, is written into the account in place of
	// deliver_to: TOML lines such as local_domains and aliases for a
	// multi-drop mailbox.
	Routing string
	// Metrics gives each daemon a metrics endpoint on a free loopback
	// port (Flow.Metrics).
	Metrics bool
	// TLS is the account's tls: "" (plain, with allow_plaintext),
	// "implicit" or "starttls". With TLS the flow's own POP3 server
	// presents ServerTLS (from the first byte, or after STLS) and CAFile
	// is the account's ca_file, the CA fetchd verifies the server with.
	// Without ServerTLS the flow's own server stays plain (Via points
	// fetchd elsewhere).
	TLS       string
	ServerTLS *tls.Config
	CAFile    string
	// StartTLS is deliver.starttls ("" leaves the default) and
	// DeliverCAFile deliver.ca_file.
	StartTLS, DeliverCAFile string
	// Extra, if set, is TOML appended to the config: more [[account]]
	// tables, [target.NAME] tables. Routing may give the flow's own
	// account a target = "NAME" line.
	Extra string
	// Wrap, if set, is given a daemon's name and command line and returns
	// the one to run: a tracer in front of it (the benchmark's strace
	// pass). Usage then reports the wrapper's process.
	Wrap func(name string, argv []string) []string
}

// Flow is one running pipeline.
type Flow struct {
	Dir    string // everything of this flow lives here
	Box    string // the POP3 mailbox: one .eml per message
	Spool  string
	Mail   string // the Maildir root; the user's Maildir is Mail/<user>
	Config string
	Logs   string
	Server *pop3srv.Server
	Opt    Options
	// Metrics is each daemon's metrics address (host:port) when
	// Options.Metrics is set.
	Metrics map[string]string
	bins    string
	procs   map[string]*Proc
}

// New prepares a flow in dir: the mailbox (empty; fill Box before or
// while running), the POP3 server on a free loopback port, and the config.
func New(dir, bins string, o Options) (*Flow, error) {
	o = o.withDefaults()
	f := &Flow{Dir: dir, Box: filepath.Join(dir, "pop3-mailbox"), Spool: filepath.Join(dir, "spool"),
		Mail: filepath.Join(dir, "Maildir"), Config: filepath.Join(dir, "popspool.toml"),
		Logs: filepath.Join(dir, "logs"), Opt: o, bins: bins, procs: map[string]*Proc{}}
	for _, d := range []string{f.Box, f.Logs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	f.Server = &pop3srv.Server{Dir: f.Box, User: o.Username, Pass: o.Password}
	if o.TLS != "" && o.ServerTLS != nil {
		f.Server.TLSConfig, f.Server.Implicit = o.ServerTLS, o.TLS == "implicit"
	}
	addr, err := f.Server.Start("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	server := addr.String()
	if o.Via != nil {
		server = o.Via(server)
	}
	if err := f.pickMetrics(); err != nil {
		f.Server.Close()
		return nil, err
	}
	if err := f.writeConfig(server); err != nil {
		f.Server.Close()
		return nil, err
	}
	return f, nil
}

func (o Options) withDefaults() Options {
	if o.Account == "" {
		o.Account = "demo"
	}
	if o.User == "" {
		o.User = "alice"
	}
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.Rescan == 0 {
		o.Rescan = time.Second
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.MaxSize == "" {
		o.MaxSize = "50MB"
	}
	if o.Username == "" {
		o.Username = "demo@isp.example"
	}
	if o.Password == "" {
		o.Password = "demo-password"
	}
	if o.DeliverTo == "" {
		o.DeliverTo = o.User + "@example.local"
	}
	return o
}

func (f *Flow) writeConfig(server string) error {
	pass := filepath.Join(f.Dir, "demo.pass")
	if err := os.WriteFile(pass, []byte(f.Server.Pass+"\n"), 0o600); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`# popspool config written by spooltest/harness
spool = %q
rescan = %q

[log]
level = %q

[[account]]
name = %q
server = %q
%s
username = %q
password_file = %q
interval = %q
max_size = %q
%s

[deliver]
target = %q
retry = ["1s", "2s"]
%s`, f.Spool, f.Opt.Rescan.String(), f.Opt.LogLevel, f.Opt.Account, server, f.accountTLS(), f.Server.User, pass,
		f.Opt.Interval.String(), f.Opt.MaxSize, f.routing(), f.target(), f.deliverTLS())
	if f.Opt.Extra != "" {
		cfg += "\n" + f.Opt.Extra + "\n"
	}
	if f.Metrics != nil {
		cfg += "\n[metrics]\n"
		for _, d := range Daemons {
			cfg += fmt.Sprintf("%s = %q\n", d, f.Metrics[d])
		}
	}
	return os.WriteFile(f.Config, []byte(cfg), 0o600)
}

// accountTLS is the account's tls lines.
func (f *Flow) accountTLS() string {
	if f.Opt.TLS == "" {
		return "tls = \"none\"              # the local test server has no TLS\nallow_plaintext = true"
	}
	out := fmt.Sprintf("tls = %q", f.Opt.TLS)
	if f.Opt.CAFile != "" {
		out += fmt.Sprintf("\nca_file = %q", f.Opt.CAFile)
	}
	return out
}

// deliverTLS is the [deliver] table's TLS lines, if any.
func (f *Flow) deliverTLS() string {
	out := ""
	if f.Opt.StartTLS != "" {
		out += fmt.Sprintf("starttls = %q\n", f.Opt.StartTLS)
	}
	if f.Opt.DeliverCAFile != "" {
		out += fmt.Sprintf("ca_file = %q\n", f.Opt.DeliverCAFile)
	}
	return out
}

// routing is the account's routing: Options.Routing or deliver_to.
func (f *Flow) routing() string {
	if f.Opt.Routing != "" {
		return f.Opt.Routing
	}
	return fmt.Sprintf("deliver_to = [%q]", f.Opt.DeliverTo)
}

// pickMetrics chooses a free loopback port for each daemon's metrics
// endpoint when Options.Metrics asks for them. The ports are closed again
// before the daemons start: another process could take one meanwhile,
// which on a test machine is unlikely.
func (f *Flow) pickMetrics() error {
	if !f.Opt.Metrics {
		return nil
	}
	f.Metrics = map[string]string{}
	for _, d := range Daemons {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("free port for %s metrics: %w", d, err)
		}
		f.Metrics[d] = l.Addr().String()
		defer l.Close()
	}
	return nil
}

// target is deliverd's target: Options.Target or the flow's Maildir.
func (f *Flow) target() string {
	if f.Opt.Target != "" {
		return f.Opt.Target
	}
	return "maildir://" + filepath.ToSlash(f.Mail) + "/{user}"
}

// Close stops every daemon and the server.
func (f *Flow) Close() {
	for _, d := range Daemons {
		f.Stop(d, 10*time.Second)
	}
	f.Server.Close()
}

// Bins is the folder of the daemons the flow runs.
func (f *Flow) Bins() string { return f.bins }

// UserMaildir is the Maildir the flow delivers into.
func (f *Flow) UserMaildir() string { return filepath.Join(f.Mail, f.Opt.User) }

// Delivered returns the messages in the user's Maildir (new/ and cur/),
// by file name.
func (f *Flow) Delivered() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(f.UserMaildir(), sub)
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			out[e.Name()] = b
		}
	}
	return out, nil
}

// Original returns the message as the POP3 server sent it, from a
// delivered Maildir file: what follows fetchd's X-Popspool-Account line.
func (f *Flow) Original(delivered []byte) ([]byte, bool) {
	marker := []byte("X-Popspool-Account: " + f.Opt.Account + "\r\n")
	i := bytes.Index(delivered, marker)
	if i < 0 {
		return nil, false
	}
	return delivered[i+len(marker):], true
}

// Wire is what a POP3 client receives for a mailbox file: the bytes, with
// CRLF added when the last line lacks one.
func Wire(b []byte) []byte {
	if bytes.HasSuffix(b, []byte("\r\n")) {
		return b
	}
	return append(append([]byte{}, b...), '\r', '\n')
}

// SpoolFiles counts the files left in each spool folder (dot-files and
// locks excluded), by folder; tmp folders appear as "tmp/<daemon>".
func (f *Flow) SpoolFiles() map[string]int {
	out := map[string]int{}
	for _, d := range []string{"incoming", "pickup", "failed", "deferred", "badmail", "duplicates", "tmp/fetchd", "tmp/rewrited", "tmp/deliverd"} {
		entries, _ := os.ReadDir(filepath.Join(f.Spool, d))
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				out[d]++
			}
		}
	}
	return out
}
