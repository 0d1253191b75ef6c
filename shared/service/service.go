// Package service is what the three daemons' main functions share: the
// command line of DESIGN.md (-config, -once), loading the config, the
// logger, and everything a service manager and an operator need, so that
// each daemon gets it by calling Run:
//
//   - SIGTERM, SIGINT (and the Windows stop, shutdown and preshutdown
//     controls) cancel the run context: the daemon finishes the file in
//     hand and returns.
//   - SIGHUP (and the Windows paramchange control) reloads the config: a
//     broken one is refused (event 1016) and the old one stays in force; a
//     good one cancels the run context as SIGTERM does, and run is called
//     again with the new config (event 1015).
//   - systemd's sd_notify protocol: READY=1 (see Env.Ready), STATUS= lines
//     with the queue depths, RELOADING=1, STOPPING=1, and WATCHDOG=1 at half
//     of WatchdogSec after each scan of the spool completes, while every
//     work loop (package liveness) makes progress or waits by choice.
//   - status/<daemon>.json in the spool, kept up to date from the daemon's
//     own log lines, and the "status" subcommand that prints all three.
//   - the optional Prometheus endpoint of the config's [metrics] table.
//   - on Windows, the "service install|uninstall|start|stop|run"
//     subcommands, the Service Control Manager and the Event Log.
//
// All of that is for a daemon running as a service. With -once, or with a
// subcommand the daemon handles itself (env.Args, such as "fetchd check"),
// Run only loads the config, makes the logger and stops on SIGTERM.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
)

// Version is popspool's version, set when building:
// go build -ldflags "-X example.org/popspool/shared/service.Version=1.2.0"
// (make build sets it from git describe).
var Version = ""

// Env is a daemon's set-up.
type Env struct {
	Name   string
	Config *config.Config
	Log    zerolog.Logger
	Once   bool
	Args   []string // what is left after the flags: a subcommand and its arguments
	ready  func()
}

// Ready tells the service manager that the daemon has finished its
// recovery and works: systemd's READY=1, and from then on the daemon's
// status file is written. Calling it is optional and it may be called any
// number of times: when run has not called it ReadyGrace after it
// started, Run calls it. A daemon that calls Ready right after its
// recovery makes "systemctl start" wait for the recovery to finish. It is
// a no-op with -once and for subcommands.
func (e *Env) Ready() {
	if e.ready != nil {
		e.ready()
	}
}

// Setup parses args (without the program name), loads the config and
// makes the logger. Config errors are returned for the caller to print.
func Setup(name string, args []string, stderr io.Writer) (*Env, error) {
	path, once, rest, err := parse(name, args, stderr)
	if err != nil {
		return nil, err
	}
	return load(name, path, once, rest, stderr)
}

// parse reads the flags, before and after a subcommand: "fetchd -config F
// check office" and "fetchd check -config F office" mean the same.
func parse(name string, args []string, stderr io.Writer) (path string, once bool, rest []string, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	p := fs.String("config", "", "config file (default $POPSPOOL_CONFIG or "+config.DefaultPath+")")
	o := fs.Bool("once", false, "do the work that is due now, then exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s [-config FILE] [-once]\n       %s status [-config FILE]\n       %s service install|uninstall|start|stop|run [-config FILE]   (Windows)\n", name, name, name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return "", false, nil, err
	}
	rest = fs.Args()
	if len(rest) > 0 {
		sub := rest[0]
		if err := fs.Parse(rest[1:]); err != nil {
			return "", false, nil, err
		}
		rest = append([]string{sub}, fs.Args()...)
	}
	return config.Path(*p), *o, rest, nil
}

func load(name, path string, once bool, rest []string, stderr io.Writer) (*Env, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	log, err := event.NewLogger(stderr, name, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return nil, fmt.Errorf("%s: log: %w", cfg.File, err)
	}
	return &Env{Name: name, Config: cfg, Log: log, Once: once, Args: rest}, nil
}

// Run runs the daemon and returns the process exit code: 0 on success, 1
// when run failed (or, for "status", when something needs attention), 2
// for a usage or config error.
func Run(name string, args []string, run func(ctx context.Context, env *Env) error) int {
	path, once, rest, err := parse(name, args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(rest) > 0 {
		switch rest[0] {
		case "status":
			return statusCommand(path, rest[1:], os.Stdout, os.Stderr)
		case "service":
			return serviceCommand(name, path, rest[1:], run)
		}
	}
	env, err := load(name, path, once, rest, os.Stderr)
	if err != nil {
		configInvalid(name, os.Stderr, err)
		return 2
	}
	if once || len(rest) > 0 {
		return runPlain(env, run)
	}
	ctl := make(chan control, 4)
	defer watchSignals(ctl)()
	return newSupervisor(name, run, os.Stderr, ctl).serve(env)
}

func configInvalid(name string, w io.Writer, err error) {
	l := zerolog.New(w).With().Timestamp().Str("daemon", name).Logger()
	event.Emit(&l, event.ConfigInvalid).Msg(err.Error())
}

// runPlain runs a -once run or a subcommand: no service manager, no
// status file, no reload.
func runPlain(env *Env, run func(ctx context.Context, env *Env) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	daemon := len(env.Args) == 0 // a subcommand is not the daemon starting
	if daemon {
		event.Emit(&env.Log, event.Started).Str("config", env.Config.File).Str("spool", env.Config.Spool).Bool("once", env.Once).Str("version", version()).Msg(env.Name + " started")
	}
	err := run(ctx, env)
	if err != nil && !errors.Is(err, context.Canceled) {
		if !daemon {
			fmt.Fprintln(os.Stderr, err) // a subcommand speaks for itself
			return 1
		}
		event.Emit(&env.Log, event.StoppedOnError).Err(err).Msg(env.Name + " stopped on an error")
		return 1
	}
	if daemon {
		event.Emit(&env.Log, event.Stopped).Msg(env.Name + " stopped")
	}
	return 0
}

// version is Version, or what the Go toolchain recorded.
func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}
