package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A pickup:// target is accepted when its folder exists; a missing one is
// an error naming the file, the line and the key.
func TestPickupTarget(t *testing.T) {
	text := strings.Replace(good, `target = "maildir://DIR/mail/{user}"`, `target = "pickup://DIR/mailroot/Pickup"`, 1)
	path := write(t, text)
	_, err := Load(path)
	want := path + ":16: deliver.target: pickup folder "
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing folder: got %v, want %q", err, want)
	}
	dir := filepath.Join(filepath.Dir(path), "mailroot", "Pickup")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Deliver.PickupDir(); got != dir {
		t.Errorf("PickupDir = %q, want %q", got, dir)
	}
	if c.Deliver.MaildirPattern() != "" {
		t.Error("a pickup target has a Maildir pattern")
	}
}

// On Windows a pickup:// target names its drive as maildir:// does.
func TestPickupDirOnWindows(t *testing.T) {
	for target, want := range map[string]string{
		"pickup:///C:/inetpub/mailroot/Pickup": `C:\inetpub\mailroot\Pickup`,
		"pickup:///srv/Pickup":                 `\srv\Pickup`,
		"maildir:///C:/Mail/{user}":            "",
	} {
		if got := filePath(target, "pickup", "windows"); got != want {
			t.Errorf("%s: %q, want %q", target, got, want)
		}
	}
}
