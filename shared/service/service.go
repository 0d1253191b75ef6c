// Package service is what the three daemons' main functions share: the
// command line of DESIGN.md (-config, -once), loading the config, the
// logger, and stopping on SIGTERM or SIGINT after the file in hand.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
)

// Env is a daemon's set-up.
type Env struct {
	Name   string
	Config *config.Config
	Log    zerolog.Logger
	Once   bool
	Args   []string // what is left after the flags
}

// Setup parses args (without the program name), loads the config and
// makes the logger. Config errors are returned for the caller to print.
func Setup(name string, args []string, stderr io.Writer) (*Env, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (default $POPSPOOL_CONFIG or "+config.DefaultPath+")")
	once := fs.Bool("once", false, "do the work that is due now, then exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	cfg, err := config.Load(config.Path(*path))
	if err != nil {
		return nil, err
	}
	log, err := event.NewLogger(stderr, name, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return nil, fmt.Errorf("%s: log: %w", cfg.File, err)
	}
	return &Env{Name: name, Config: cfg, Log: log, Once: *once, Args: fs.Args()}, nil
}

// Run calls run with a context that ends on SIGTERM or SIGINT, logs the
// start and the end, and returns the process exit code: 0 on success, 1
// when run failed, 2 for a usage or config error.
func Run(name string, args []string, run func(ctx context.Context, env *Env) error) int {
	env, err := Setup(name, args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		l := zerolog.New(os.Stderr).With().Timestamp().Str("daemon", name).Logger()
		event.Emit(&l, event.ConfigInvalid).Msg(err.Error())
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	event.Emit(&env.Log, event.Started).Str("config", env.Config.File).Str("spool", env.Config.Spool).Bool("once", env.Once).Msg(name + " started")
	err = run(ctx, env)
	if err != nil && !errors.Is(err, context.Canceled) {
		env.Log.Error().Err(err).Msg(name + " stopped on an error")
		return 1
	}
	event.Emit(&env.Log, event.Stopped).Msg(name + " stopped")
	return 0
}
