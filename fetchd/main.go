// Command fetchd downloads mail from remote POP3 mailboxes into the spool's
// incoming/ folder, and deletes on the server only what is safely on disk.
//
//	fetchd [-config FILE] [-once]
//	fetchd check [-config FILE] [ACCOUNT]
//
// "fetchd check" connects to each account (or the one named) step by step
// and says plainly which step fails and what to do; it exits 0 only when
// every step of every account passed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"example.org/popspool/fetchd/fetch"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/service"
	"example.org/popspool/shared/spool"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "check" {
		os.Exit(check(os.Args[2:]))
	}
	os.Exit(service.Run("fetchd", os.Args[1:], run))
}

// memory outlives config reloads (service.Run calls run again): a
// stopped account stays stopped until its settings change.
var memory = fetch.NewMemory()

func run(ctx context.Context, env *service.Env) error {
	if len(env.Args) > 0 { // "fetchd -config F check ...": flags first
		if env.Args[0] != "check" {
			return fmt.Errorf("unknown command %q (want check)", env.Args[0])
		}
		if code := checkAccounts(ctx, env.Config, env.Log, env.Args[1:]); code != 0 {
			return errors.New("fetchd check: a step failed")
		}
		return nil
	}
	s, err := spool.Open(env.Config.Spool, "fetchd", env.Log)
	if err != nil {
		return err
	}
	defer s.Close()
	f, err := fetch.New(s, env.Config, env.Log)
	if err != nil {
		return err
	}
	defer f.Close()
	f.SetMemory(memory)
	env.Ready()
	if env.Once {
		return f.Once(ctx)
	}
	return f.Run(ctx)
}

// check runs "fetchd check [-config FILE] [ACCOUNT]" and returns the exit
// code: 0 all passed, 1 a step failed, 2 usage or config error.
func check(args []string) int {
	env, err := service.Setup("fetchd", args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return checkAccounts(ctx, env.Config, env.Log, env.Args)
}

// checkAccounts checks the accounts args name (all if none); at trace
// level log gets each session's POP3 transcript.
func checkAccounts(ctx context.Context, cfg *config.Config, log zerolog.Logger, args []string) int {
	accounts, err := pick(cfg, args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	code := 0
	for _, a := range accounts {
		if !fetch.Check(ctx, a, os.Stdout, log) {
			code = 1
		}
	}
	return code
}

// pick returns the accounts named in args, or all of them.
func pick(cfg *config.Config, args []string) ([]*config.Account, error) {
	if len(args) > 1 {
		return nil, errors.New("usage: fetchd check [-config FILE] [ACCOUNT]")
	}
	if len(args) == 1 {
		a, ok := cfg.AccountNamed(args[0])
		if !ok {
			return nil, fmt.Errorf("%s: no account named %q", cfg.File, args[0])
		}
		return []*config.Account{a}, nil
	}
	if len(cfg.Account) == 0 {
		return nil, fmt.Errorf("%s: no [[account]] to check", cfg.File)
	}
	var all []*config.Account
	for i := range cfg.Account {
		all = append(all, &cfg.Account[i])
	}
	return all, nil
}
