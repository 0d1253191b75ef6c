package check

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
)

// maildir checks a maildir:// target: its root is a directory, deliverd
// can create (and remove) a file where it delivers, and whether missing
// Maildirs are created.
func (ck *checker) maildir(cfg *config.Config, d *config.Deliver, pattern string) bool {
	root := maildirRoot(pattern)
	fi, err := os.Stat(root)
	switch {
	case err != nil:
		return ck.failed("root", event.CheckMaildir, err.Error(),
			fmt.Sprintf("create it (mkdir -p %s, owned by the user deliverd runs as), or fix the path in deliver.target", root))
	case !fi.IsDir():
		return ck.failed("root", event.CheckMaildir, root+" is not a directory",
			"deliver.target's path must lead to a folder of Maildirs, such as maildir:///var/mail/{user}")
	}
	ck.ok("root", "%s is a directory", root)
	dir := probeDir(cfg, pattern, root)
	if err := probeWrite(dir); err != nil {
		return ck.failed("writable", event.CheckMaildir, err.Error(),
			"give deliverd's user write permission there (chown -R or chmod u+w), and check the file system is neither read-only nor full")
	}
	ck.ok("writable", "created and removed a probe file in %s", dir)
	ck.create(cfg, d, pattern)
	return true
}

// maildirRoot is the folder above the first part of pattern that names
// {user} or {domain}; for a pattern without one (a single Maildir), the
// folder holding that Maildir.
func maildirRoot(pattern string) string {
	pattern = filepath.Clean(pattern)
	i := strings.IndexByte(pattern, '{')
	if i < 0 {
		return filepath.Dir(pattern)
	}
	return filepath.Dir(pattern[:i] + "x")
}

// probeDir is tmp/ of the Maildir deliverd writes to first, the
// postmaster's, or of another Maildir that exists, or else the root.
func probeDir(cfg *config.Config, pattern, root string) string {
	candidates := []string{config.MaildirPath(pattern, cfg.Deliver.Postmaster)}
	glob := strings.NewReplacer("{user}", "*", "{domain}", "*").Replace(pattern)
	if found, err := filepath.Glob(filepath.Clean(glob)); err == nil {
		candidates = append(candidates, found...)
	}
	for _, d := range candidates {
		if fi, err := os.Stat(filepath.Join(d, "new")); err == nil && fi.IsDir() {
			return filepath.Join(d, "tmp")
		}
	}
	return root
}

// probeWrite creates, fsyncs and removes a file in dir, as a delivery
// does in tmp/.
func probeWrite(dir string) error {
	name := filepath.Join(dir, fmt.Sprintf(".popspool-check.%d.%d", os.Getpid(), time.Now().UnixNano()))
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString("deliverd check\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(name); err == nil && rerr != nil {
		err = fmt.Errorf("the probe file was written but cannot be removed: %w", rerr)
	}
	return err
}

// create reports deliver.maildir_create and the postmaster's Maildir.
func (ck *checker) create(cfg *config.Config, d *config.Deliver, pattern string) {
	pm := config.MaildirPath(pattern, cfg.Deliver.Postmaster)
	state := "does not exist yet; it is created at the first DSN"
	if fi, err := os.Stat(filepath.Join(pm, "new")); err == nil && fi.IsDir() {
		state = "exists"
	}
	if d.MaildirCreate {
		ck.ok("create", "maildir_create = true: a missing Maildir is created for any recipient; the postmaster's %s %s", pm, state)
		return
	}
	ck.ok("create", "maildir_create = false: only the Maildirs of addresses the config names (deliver_to, aliases, unrouted_to, the postmaster) are created, others must exist (maildirmake); the postmaster's %s %s", pm, state)
}
