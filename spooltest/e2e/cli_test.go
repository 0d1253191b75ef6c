package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// everyDaemon are the commands each binary has, after its own.
var everyDaemon = []string{"queue", "show", "requeue", "hold", "release", "delete", "retrieve-now", "console", "status", "service", "help"}

// commandsOf is what each binary's -h must list, in order.
var commandsOf = map[string][]string{
	"fetchd":   append([]string{"check", "oauth"}, everyDaemon...),
	"rewrited": append([]string{"explain"}, everyDaemon...),
	"deliverd": append([]string{"check"}, everyDaemon...),
}

// The three binaries agree on their command line: -h lists every command,
// -version prints the version, and an unknown word or flag (a typo, or a
// command another binary has) is refused with the usage and exit 2
// instead of starting a second copy of the daemon.
func TestCommandLine(t *testing.T) {
	var every []string
	for _, cmds := range commandsOf {
		every = append(every, cmds...)
	}
	every = append(every, "bogus")
	for name, cmds := range commandsOf {
		out, _, code := runBinary(t, name, "-h")
		if got := listed(out); code != 0 || !slices.Equal(got, cmds) {
			t.Errorf("%s -h: exit %d, commands %q, want %q\n%s", name, code, got, cmds, out)
		}
		if out, _, code := runBinary(t, name, "-version"); code != 0 || !strings.HasPrefix(out, name+" (popspool) ") {
			t.Errorf("%s -version: exit %d %q", name, code, out)
		}
		if _, errs, code := runBinary(t, name, "-bogus"); code != 2 || !strings.Contains(errs, "usage: "+name) {
			t.Errorf("%s -bogus: exit %d\n%s", name, code, errs)
		}
		for _, word := range every {
			if slices.Contains(cmds, word) {
				continue
			}
			_, errs, code := runBinary(t, name, word)
			if code != 2 || !strings.Contains(errs, `unknown command "`+word+`"`) || !strings.Contains(errs, "usage: "+name) {
				t.Errorf("%s %s: exit %d\n%s", name, word, code, errs)
			}
		}
		for _, cmd := range cmds {
			if cmd == "help" || cmd == "service" {
				continue // service -h would be Windows' business
			}
			if out, _, code := runBinary(t, name, cmd, "-h"); code != 0 || !strings.HasPrefix(out, "usage: "+name+" "+cmd) {
				t.Errorf("%s %s -h: exit %d %q", name, cmd, code, out)
			}
		}
	}
}

// runBinary runs a built daemon with a config that does not exist, so
// that nothing it is asked can start a daemon.
func runBinary(t *testing.T, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bins, name), args...)
	cmd.Env = []string{"POPSPOOL_CONFIG=" + filepath.Join(t.TempDir(), "none.toml")}
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("%s %q: %v", name, args, err)
	}
	return out.String(), errs.String(), code
}

// listed returns the command words of a usage text.
func listed(usage string) []string {
	_, rest, _ := strings.Cut(usage, "\ncommands:\n")
	var words []string
	for _, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "  ") {
			break
		}
		words = append(words, strings.Fields(line)[0])
	}
	return words
}
