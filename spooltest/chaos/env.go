package chaos

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Environment describes where a figure was measured (notes/
// reliability.md §9: "with the commit, kernel, filesystem and mount
// options"): the commit of the working tree, the kernel, and the
// filesystem holding dir with its mount options.
func Environment(dir string) string {
	commit := "unknown"
	if out, err := exec.Command("git", "-C", dir, "describe", "--always", "--dirty").Output(); err == nil {
		commit = strings.TrimSpace(string(out))
	} else if root, err := exec.Command("go", "env", "GOWORK").Output(); err == nil && len(root) > 1 {
		if out, err := exec.Command("git", "-C", filepath.Dir(strings.TrimSpace(string(root))), "describe", "--always", "--dirty").Output(); err == nil {
			commit = strings.TrimSpace(string(out))
		}
	}
	kernel := runtime.GOOS
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel += " " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("commit=%s kernel=%q cpus=%d fs=%q", commit, kernel, runtime.NumCPU(), mountOf(dir))
}

// mountOf returns "type (options) on mountpoint" for the filesystem of
// dir, from /proc/self/mountinfo; "unknown" elsewhere.
func mountOf(dir string) string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	dir, _ = filepath.Abs(dir)
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	best, bestLen := "unknown", -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - type source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 6 || len(b) < 1 {
			continue
		}
		mp := a[4]
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > bestLen {
			opts := a[5]
			if len(b) >= 3 {
				opts += "," + b[2]
			}
			best, bestLen = fmt.Sprintf("%s (%s) on %s", b[0], opts, mp), len(mp)
		}
	}
	return best
}
