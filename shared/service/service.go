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
// All of that is for a daemon running as a service. With -once, Run only
// loads the config, makes the logger and stops on SIGTERM. A word after
// the flags names a Command (commands.go): the daemon's own ("fetchd
// check") or one every daemon has ("status"); any other word is refused.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
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
	Args   []string // a command's arguments after its flags; nil for the daemon
	ready  func()
}

// Ready tells the service manager that the daemon has finished its
// recovery and works: systemd's READY=1, and from then on the daemon's
// status file is written. Calling it is optional and it may be called any
// number of times: when run has not called it ReadyGrace after it
// started, Run calls it. A daemon that calls Ready right after its
// recovery makes "systemctl start" wait for the recovery to finish. It is
// a no-op with -once and for commands.
func (e *Env) Ready() {
	if e.ready != nil {
		e.ready()
	}
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

// Run runs the daemon, or the command named after its flags (own, then
// the ones every daemon has: status, service, help), and returns the
// process exit code: 0 on success, 1 when run failed (or, for a command,
// when what it checks failed), 2 for a usage or config error. An unknown
// command or flag is a usage error: it never starts the daemon.
func Run(name string, args []string, run func(ctx context.Context, env *Env) error, own ...Command) int {
	path, once, code, done := dispatch(name, args, commands(name, run, own), os.Stdout, os.Stderr)
	if done {
		return code
	}
	env, err := load(name, path, once, nil, os.Stderr)
	if err != nil {
		configInvalid(name, os.Stderr, err)
		return 2
	}
	oneProc()
	if env.Once {
		return runPlain(env, run)
	}
	ctl := make(chan control, 4)
	defer watchSignals(ctl)()
	var out io.Writer = os.Stderr
	if j := journald(os.Stderr); j != nil {
		out = j // under systemd: native journal entries with fields
	}
	return newSupervisor(name, run, out, ctl).serve(env)
}

// oneProc runs the daemon's goroutines on one processor (GOMAXPROCS=1)
// unless the GOMAXPROCS variable says otherwise. Each daemon does its
// work one file at a time and mostly waits for the disk and the network;
// with a second processor the Go runtime wakes and parks threads to hand
// goroutines across, and on a two-core machine shared with the mail
// server that cost more CPU than it saved (docs/design-notes.md, "One
// processor per daemon").
func oneProc() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}

func configInvalid(name string, w io.Writer, err error) {
	l := zerolog.New(w).With().Timestamp().Str("daemon", name).Logger()
	event.Emit(&l, event.ConfigInvalid).Msg(err.Error())
}

// runPlain runs a -once run: no service manager, no status file, no
// reload.
func runPlain(env *Env, run func(ctx context.Context, env *Env) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	event.Emit(&env.Log, event.Started).Str("config", env.Config.File).Str("spool", env.Config.Spool).Bool("once", env.Once).Str("version", version()).Int("procs", runtime.GOMAXPROCS(0)).Msg(env.Name + " started")
	if err := run(ctx, env); err != nil && !errors.Is(err, context.Canceled) {
		event.Emit(&env.Log, event.StoppedOnError).Err(err).Msg(env.Name + " stopped on an error")
		return 1
	}
	event.Emit(&env.Log, event.Stopped).Msg(env.Name + " stopped")
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
