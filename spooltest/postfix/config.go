package postfix

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// layout writes main.cf, master.cf and the mailbox map, and makes the
// folders with the owners Postfix insists on.
func (s *Server) layout() error {
	// Postfix's daemons drop privileges: every parent must be traversable.
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		return err
	}
	for _, d := range []string{"queue", "data", "mail"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o755); err != nil {
			return err
		}
	}
	// data_directory must belong to mail_owner, or the master cannot take
	// its lock (real-servers.md); virtual(8) creates Maildirs as UID.
	if err := chownName(filepath.Join(s.Dir, "data"), "postfix"); err != nil {
		return err
	}
	if err := os.Chown(filepath.Join(s.Dir, "mail"), s.UID, s.GID); err != nil {
		return err
	}
	// The log file must be writable by mail_owner: at a restart postsuper
	// writes to it directly, before postlogd runs.
	log := filepath.Join(s.Dir, "maillog")
	if err := os.WriteFile(log, nil, 0o644); err != nil {
		return err
	}
	if err := chownName(log, "postfix"); err != nil {
		return err
	}
	files := map[string]string{
		"main.cf":   s.mainCF(),
		"master.cf": s.masterCF(),
		"vmailbox":  s.vmailbox(),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(s.Dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) mainCF() string {
	maxSize := "10240000"
	if s.opt.MaxSize > 0 {
		maxSize = fmt.Sprint(s.opt.MaxSize)
	}
	lines := []string{
		"compatibility_level = 3.6",
		"queue_directory = " + filepath.Join(s.Dir, "queue"),
		"data_directory = " + filepath.Join(s.Dir, "data"),
		"mail_owner = postfix",
		"setgid_group = postdrop",
		"myhostname = " + s.opt.Hostname,
		"mydomain = " + s.Domain,
		"myorigin = $myhostname",
		"smtpd_banner = $myhostname ESMTP popspool-test",
		"inet_interfaces = 127.0.0.1",
		"inet_protocols = ipv4",
		"mynetworks = 127.0.0.0/8",
		"smtpd_peername_lookup = no",
		"smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
		"smtpd_delay_reject = yes",
		// Queue ids that are never reused (the short ones are a time in
		// microseconds and an inode number, both of which repeat), so a
		// test can tell two transactions by the id in the Received header.
		"enable_long_queue_ids = yes",
		// Nothing may leave the machine.
		"mydestination =",
		"relayhost =",
		"default_transport = error:this test instance delivers nowhere else",
		"relay_transport = error:this test instance delivers nowhere else",
		"local_transport = error:this test instance has no local delivery",
		"alias_maps =",
		"alias_database =",
		"biff = no",
		"append_dot_mydomain = no",
		// Leave the messages as they came: no headers added or rewritten
		// for loopback clients (permit_inet_interfaces is the default).
		"local_header_rewrite_clients =",
		"message_drop_headers =", // default: bcc, content-length, resent-bcc, return-path
		"smtputf8_enable = yes",
		"message_size_limit = " + maxSize,
		// Virtual Maildirs for the test users; others: 550 5.1.1 at RCPT.
		"virtual_mailbox_domains = " + s.Domain,
		"virtual_mailbox_maps = texthash:" + filepath.Join(s.Dir, "vmailbox"),
		"virtual_mailbox_base = " + filepath.Join(s.Dir, "mail"),
		fmt.Sprintf("virtual_uid_maps = static:%d", s.UID),
		fmt.Sprintf("virtual_gid_maps = static:%d", s.GID),
		"virtual_minimum_uid = 1",
		"virtual_mailbox_limit = 0",
		"virtual_destination_concurrency_limit = 20",
		// Deferred mail is retried fast, so a test never waits minutes.
		"queue_run_delay = 2s",
		"minimal_backoff_time = 2s",
		"maximal_backoff_time = 10s",
		// No syslogd here: a log file of our own.
		"maillog_file = " + filepath.Join(s.Dir, "maillog"),
		"maillog_file_prefixes = " + s.Dir,
	}
	lines = append(lines, s.opt.MainCF...)
	return strings.Join(lines, "\n") + "\n"
}

// masterCF runs nothing chrooted (column 5 "n"): a chroot would need
// copies of /etc files inside the queue folder.
func (s *Server) masterCF() string {
	rows := [][]string{
		{s.Addr, "inet", "n", "-", "n", "-", "-", "smtpd"},
		{"pickup", "unix", "n", "-", "n", "60", "1", "pickup"},
		{"cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"},
		{"qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"},
		{"tlsmgr", "unix", "-", "-", "n", "1000?", "1", "tlsmgr"},
		{"rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"},
		{"bounce", "unix", "-", "-", "n", "-", "0", "bounce"},
		{"defer", "unix", "-", "-", "n", "-", "0", "bounce"},
		{"trace", "unix", "-", "-", "n", "-", "0", "bounce"},
		{"verify", "unix", "-", "-", "n", "-", "1", "verify"},
		{"flush", "unix", "n", "-", "n", "1000?", "0", "flush"},
		{"proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"},
		{"proxywrite", "unix", "-", "-", "n", "-", "1", "proxymap"},
		{"showq", "unix", "n", "-", "n", "-", "-", "showq"},
		{"error", "unix", "-", "-", "n", "-", "-", "error"},
		{"retry", "unix", "-", "-", "n", "-", "-", "error"},
		{"discard", "unix", "-", "-", "n", "-", "-", "discard"},
		{"virtual", "unix", "-", "n", "n", "-", "-", "virtual"},
		{"anvil", "unix", "-", "-", "n", "-", "1", "anvil"},
		{"scache", "unix", "-", "-", "n", "-", "1", "scache"},
		{"postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"},
	}
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, "\t") + "\n")
	}
	return b.String()
}

// vmailbox maps each test address to its Maildir (a trailing "/" means
// Maildir to virtual(8)), relative to virtual_mailbox_base.
func (s *Server) vmailbox() string {
	var b strings.Builder
	for _, u := range s.Users {
		fmt.Fprintf(&b, "%s %s/%s/\n", s.Address(u), s.Domain, u)
	}
	return b.String()
}

// MaildirOf returns the Maildir of a test address.
func (s *Server) MaildirOf(addr string) string {
	local, _, _ := strings.Cut(addr, "@")
	return filepath.Join(s.Dir, "mail", s.Domain, local)
}
