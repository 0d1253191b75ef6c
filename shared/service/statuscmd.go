package service

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/BurntSushi/toml"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/status"
)

// statusCommand prints the status table of the spool of the config at
// path. It works with a broken config too (that is when it is needed):
// then only the spool is read from it, and the errors are listed.
func statusCommand(path string, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "status takes no arguments but -config FILE, not %q\n", args)
		return 2
	}
	in := status.Input{}
	cfg, err := config.Load(path)
	if err == nil {
		in.Root = cfg.Spool
		in.Accounts = []string{}
		for _, a := range cfg.Account {
			in.Accounts = append(in.Accounts, a.Name)
		}
	} else {
		var lenient struct {
			Spool string `toml:"spool"`
		}
		if _, terr := toml.DecodeFile(path, &lenient); terr != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		in.Root, in.ConfigErr = lenient.Spool, err
		if in.Root == "" {
			in.Root = "/var/spool/popspool" // config's default
		}
	}
	if _, err := os.ReadDir(in.Root); err != nil {
		fmt.Fprintf(stderr, "cannot read the spool: %v\n", err)
		if errors.Is(err, os.ErrPermission) {
			fmt.Fprintln(stderr, "(the spool is private to the daemons' user: run status as root, or sudo -u popspool)")
		}
		return 2
	}
	if status.Report(stdout, in) > 0 {
		return 1
	}
	return 0
}
