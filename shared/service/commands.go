package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"text/tabwriter"

	"example.org/popspool/shared/config"
)

// Command is a subcommand: a word after the daemon's flags that makes the
// binary do one job and exit instead of running the daemon ("fetchd check
// office"). A word that names no command is refused with the usage, so a
// typo never starts a second copy of a service.
type Command struct {
	Name string // the word: "check"
	Args string // what follows it in the usage line: "[ACCOUNT]"
	Help string // one line for -h
	// Flags, if set, adds the command's own flags to its flag set (which
	// always has -config).
	Flags func(fs *flag.FlagSet)
	// Run does the job with the config loaded and the arguments left
	// after the flags in env.Args, and returns the exit code: 0 done, 1
	// failed, 2 usage.
	Run func(ctx context.Context, env *Env) int
	// RunPath, used instead of Run, gets the config's path unloaded (for
	// "status", which must work with a broken config).
	RunPath func(path string, args []string) int
}

// commands are the daemon's own commands after the ones every daemon has.
func commands(name string, run func(context.Context, *Env) error, own []Command) []Command {
	all := append(append([]Command{}, own...), adminCommands()...)
	return append(all,
		Command{
			Name: "status", Help: "the state of the three daemons, the accounts and the spool folders",
			RunPath: func(path string, args []string) int { return statusCommand(path, args, os.Stdout, os.Stderr) },
		},
		Command{
			Name: "service", Args: "install|uninstall|start|stop|run", Help: "Windows only: register with and run under the Service Control Manager",
			RunPath: func(path string, args []string) int { return serviceCommand(name, path, args, run) },
		},
		Command{Name: "help", Help: "this text"},
	)
}

// usage writes the daemon's usage: the daemon's own line, then a line for
// each command, then the flags.
func usage(w io.Writer, name string, cmds []Command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s [-config FILE] [-once]\n       %s COMMAND [-config FILE] [ARGUMENTS]\n       %s -version\n\n", name, name, name)
	fmt.Fprintf(w, "Without a command %s runs as a service; -once does the work that is due now and exits.\n\ncommands:\n", name)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, c := range cmds {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.Name, c.Args, c.Help)
	}
	_ = tw.Flush() // w is stderr or stdout
	fmt.Fprintf(w, "\nflags:\n")
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// dispatch reads the daemon's flags and runs the command they are
// followed by, if any. done is true when the process should exit with
// code; otherwise path and once are for the daemon.
func dispatch(name string, args []string, cmds []Command, stdout, stderr io.Writer) (path string, once bool, code int, done bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below, to stdout for -h
	p := fs.String("config", "", configHelp)
	o := fs.Bool("once", false, "do the work that is due now, then exit")
	v := fs.Bool("version", false, "print the version and exit")
	if code, stop := parseFlags(fs, args, stdout, stderr, func(w io.Writer) { usage(w, name, cmds, fs) }); stop {
		return "", false, code, true
	}
	if *v {
		printVersion(stdout, name)
		return "", false, 0, true
	}
	path = config.Path(*p)
	if rest := fs.Args(); len(rest) > 0 {
		return "", false, runCommand(name, path, rest, cmds, stdout, stderr, func(w io.Writer) { usage(w, name, cmds, fs) }), true
	}
	return path, *o, 0, false
}

const configHelp = "config file (default $POPSPOOL_CONFIG or " + config.DefaultPath + ")"

// parseFlags parses args into fs. stop is true when the process should
// exit with code: 0 after -h (the usage on stdout), 2 after a bad flag
// (the usage on stderr, after the flag package's complaint).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer, usage func(io.Writer)) (code int, stop bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		usage(stdout)
		return 0, true
	default:
		fmt.Fprintln(stderr)
		usage(stderr)
		return 2, true
	}
}

// runCommand runs the command named by rest[0] with its arguments, path
// being the -config given before it. It returns the exit code.
func runCommand(name, path string, rest []string, cmds []Command, stdout, stderr io.Writer, daemonUsage func(io.Writer)) int {
	c, ok := find(cmds, rest[0])
	switch {
	case !ok:
		fmt.Fprintf(stderr, "%s: unknown command %q\n\n", name, rest[0])
		daemonUsage(stderr)
		return 2
	case c.Name == "help":
		daemonUsage(stdout)
		return 0
	}
	fs := flag.NewFlagSet(name+" "+c.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	p := fs.String("config", path, configHelp)
	if c.Flags != nil {
		c.Flags(fs)
	}
	cmdUsage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: %s %s [-config FILE] %s\n  %s\n\nflags:\n", name, c.Name, c.Args, c.Help)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	// Flags may follow the arguments too ("service install -config F",
	// "check office -config F"), as the docs and install.ps1 write them.
	var args []string
	for more := rest[1:]; ; more = fs.Args()[1:] {
		if code, stop := parseFlags(fs, more, stdout, stderr, cmdUsage); stop {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		args = append(args, fs.Arg(0))
	}
	if c.RunPath != nil {
		return c.RunPath(config.Path(*p), args)
	}
	env, err := load(name, config.Path(*p), false, args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return c.Run(ctx, env)
}

func find(cmds []Command, word string) (Command, bool) {
	for _, c := range cmds {
		if c.Name == word {
			return c, true
		}
	}
	return Command{}, false
}

// printVersion is -version.
func printVersion(w io.Writer, name string) {
	fmt.Fprintf(w, "%s (popspool) %s %s %s/%s\n", name, version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
