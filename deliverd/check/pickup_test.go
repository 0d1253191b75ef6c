package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckPickup(t *testing.T) {
	root := filepath.Join(t.TempDir(), "mailroot")
	dir := filepath.Join(root, "Pickup")
	staging := filepath.Join(root, "popspool-staging")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	target := `target = "pickup://` + dir + `"`
	t.Run("good", func(t *testing.T) {
		r := runCheck(t, loadConfig(t, target))
		r.passed(t, "  folder:    ok "+dir+" is a folder\n",
			"  writable:  ok deliverd's user may write into "+dir+"\n",
			"  staging:   ok created and removed a probe file in "+staging+", on the pickup folder's volume; ")
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("the check put files into the pickup folder: %v", left)
		}
		if left, _ := os.ReadDir(staging); len(left) != 0 {
			t.Errorf("probe file left behind: %v", left)
		}
		if fi, err := os.Stat(staging); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("staging folder %v %v", fi, err)
		}
	})
	t.Run("staging cannot be made", func(t *testing.T) {
		cfg := loadConfig(t, target)
		os.RemoveAll(staging)
		if err := os.WriteFile(staging, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(staging)
		r := runCheck(t, cfg)
		r.failedWith(t, "  staging:   FAILED: mkdir "+staging+": not a directory — let deliverd's user create "+staging, 4040)
	})
	t.Run("folder gone after start", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "Pickup")
		os.Mkdir(other, 0o700)
		cfg := loadConfig(t, `target = "pickup://`+other+`"`)
		os.Remove(other)
		r := runCheck(t, cfg)
		r.failedWith(t, "  folder:    FAILED: stat "+other+": no such file or directory — start the IIS SMTP or Exchange Transport service once", 4040)
	})
	t.Run("folder read-only", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root may write into a mode 0555 folder")
		}
		ro := filepath.Join(t.TempDir(), "Pickup")
		os.Mkdir(ro, 0o555)
		r := runCheck(t, loadConfig(t, `target = "pickup://`+ro+`"`))
		r.failedWith(t, "is not writable: permission denied — give deliverd's user", 4040)
		if strings.Contains(r.out, "staging:") {
			t.Error("went on after a failed step")
		}
	})
}
