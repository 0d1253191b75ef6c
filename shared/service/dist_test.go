package service

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"example.org/popspool/shared/config"
)

// The units in dist/systemd must match what Run does: sd_notify from the
// main process, SIGHUP for reload, a watchdog, the spool writable.
func TestSystemdUnits(t *testing.T) {
	for _, d := range []string{"fetchd", "rewrited", "deliverd"} {
		path := filepath.Join("..", "..", "dist", "systemd", "popspool-"+d+".service")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		unit := string(b)
		for _, want := range []string{
			"Type=notify", "NotifyAccess=main", "WatchdogSec=", "Restart=on-failure",
			"ExecStart=/usr/local/sbin/" + d + " -config /etc/popspool/popspool.toml",
			"ExecReload=/bin/kill -HUP $MAINPID", "User=popspool", "ProtectSystem=strict",
			"ReadWritePaths=/var/spool/popspool", "PrivateTmp=yes", "NoNewPrivileges=yes",
			"ProtectHome=yes", "PartOf=popspool.target", "WantedBy=popspool.target",
		} {
			if !strings.Contains(unit, "\n"+want) {
				t.Errorf("%s: no line %q", path, want)
			}
		}
		verify(t, d, unit)
	}
}

// "systemctl reload popspool.target" reaches the three daemons: a target
// has no reload of its own, and systemd refuses the job without
// PropagatesReloadTo (found booting the units, scripts/systemd-test.sh).
func TestSystemdTarget(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "dist", "systemd", "popspool.target"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Wants=popspool-fetchd.service popspool-rewrited.service popspool-deliverd.service",
		"PropagatesReloadTo=popspool-fetchd.service popspool-rewrited.service popspool-deliverd.service",
	} {
		if !strings.Contains(string(b), "\n"+want+"\n") {
			t.Errorf("popspool.target: no line %q", want)
		}
	}
}

// verify runs systemd-analyze verify on a copy of the unit whose binary
// exists, where systemd-analyze is installed.
func verify(t *testing.T, d, unit string) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		return
	}
	dir := t.TempDir()
	unit = strings.Replace(unit, "/usr/local/sbin/"+d+" ", "/bin/true ", 1)
	path := filepath.Join(dir, "popspool-"+d+".service")
	os.WriteFile(path, []byte(unit), 0o644)
	target, _ := os.ReadFile(filepath.Join("..", "..", "dist", "systemd", "popspool.target"))
	os.WriteFile(filepath.Join(dir, "popspool.target"), target, 0o644)
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	// Complaints about units we do not ship (postfix.service ...) are fine.
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(l, "popspool") {
			t.Errorf("systemd-analyze verify %s: %s (%v)", d, l, err)
		}
	}
}

// The example config is valid but for the secrets it points at.
func TestExampleConfig(t *testing.T) {
	_, err := config.Load(filepath.Join("..", "..", "dist", "popspool.toml.example"))
	if err == nil {
		return
	}
	for _, l := range strings.Split(err.Error(), "\n") {
		if !strings.Contains(l, "password_file: cannot read") {
			t.Errorf("example config: %s", l)
		}
	}
}
