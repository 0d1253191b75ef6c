// Command fetchd downloads mail from remote POP3 mailboxes into the spool's
// incoming/ folder, and deletes on the server only what is safely on disk.
//
//	fetchd [-config FILE] [-once]
//	fetchd check [-config FILE] [-list] [ACCOUNT]
//	fetchd oauth [-config FILE] login ACCOUNT
//
// "fetchd check" connects to each account (or the one named) step by step
// and says plainly which step fails and what to do; it exits 0 only when
// every step of every account passed. With -list it also says what the
// next poll would do with each message on the server.
//
// "fetchd oauth login ACCOUNT" authorizes fetchd for an account with
// built-in OAuth (oauth_provider) by the device-code flow: it prints a
// URL and a code, waits for the sign-in and stores the refresh token in
// the spool's state/ folder (docs/oauth.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"example.org/popspool/fetchd/fetch"
	"example.org/popspool/shared/config"
	"example.org/popspool/shared/service"
	"example.org/popspool/shared/spool"
)

func main() {
	os.Exit(service.Run("fetchd", os.Args[1:], run, checkCommand(), oauthCommand()))
}

// checkCommand is "fetchd check [-list] [ACCOUNT]".
func checkCommand() service.Command {
	var list *bool
	return service.Command{
		Name: "check", Args: "[-list] [ACCOUNT]",
		Help: "log on to each account (or the one named) step by step and say which step fails; -list: what the next poll would do with each message",
		Flags: func(fs *flag.FlagSet) {
			list = fs.Bool("list", false, "also list the messages on the server: new, fetched, too big or set aside (changes nothing)")
		},
		Run: func(ctx context.Context, env *service.Env) int {
			return checkAccounts(ctx, env.Config, env.Log, env.Args, *list)
		},
	}
}

// oauthCommand is "fetchd oauth login ACCOUNT".
func oauthCommand() service.Command {
	var from *string
	return service.Command{
		Name: "oauth", Args: "login ACCOUNT",
		Help: "sign in to the account's OAuth provider (device code: prints a URL and a code, waits) and store the refresh token in state/",
		Flags: func(fs *flag.FlagSet) {
			from = fs.String("refresh-token-file", "", "instead of signing in, take the refresh token in FILE (obtained by another flow), try it and store it")
		},
		Run: func(ctx context.Context, env *service.Env) int {
			args, file := oauthArgs(env.Args, *from)
			return oauthLogin(ctx, env.Config, env.Log, args, file)
		},
	}
}

// oauthArgs also takes -refresh-token-file after the word login, where
// the usage line puts it (the flag set stops at the first word).
func oauthArgs(args []string, from string) ([]string, string) {
	if len(args) >= 3 && args[0] == "login" && (args[1] == "-refresh-token-file" || args[1] == "--refresh-token-file") {
		return append([]string{"login"}, args[3:]...), args[2]
	}
	return args, from
}

// oauthLogin is "fetchd oauth login ACCOUNT": the device flow, or the
// import of the refresh token in file from.
func oauthLogin(ctx context.Context, cfg *config.Config, log zerolog.Logger, args []string, from string) int {
	if len(args) != 2 || args[0] != "login" {
		fmt.Fprintln(os.Stderr, "usage: fetchd oauth [-config FILE] login [-refresh-token-file FILE] ACCOUNT")
		return 2
	}
	a, ok := cfg.AccountNamed(args[1])
	if !ok {
		fmt.Fprintf(os.Stderr, "%s: no account named %q\n", cfg.File, args[1])
		return 2
	}
	state := filepath.Join(cfg.Spool, spool.State)
	if err := os.MkdirAll(state, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if from != "" {
		b, err := os.ReadFile(from)
		if err == nil {
			err = fetch.OAuthImport(ctx, a, state, strings.TrimSpace(string(b)), os.Stdout, log)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "fetchd oauth login %s: %v\n", a.Name, err)
			return 1
		}
		return 0
	}
	if err := fetch.OAuthLogin(ctx, a, state, os.Stdout, log); err != nil {
		fmt.Fprintf(os.Stderr, "fetchd oauth login %s: %v\n", a.Name, err)
		return 1
	}
	return 0
}

// memory outlives config reloads (service.Run calls run again): a
// stopped account stays stopped until its settings change.
var memory = fetch.NewMemory()

func run(ctx context.Context, env *service.Env) error {
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

// checkAccounts checks the accounts args name (all if none); at trace
// level log gets each session's POP3 transcript.
func checkAccounts(ctx context.Context, cfg *config.Config, log zerolog.Logger, args []string, list bool) int {
	accounts, err := pick(cfg, args)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	code := 0
	for _, a := range accounts {
		ok := false
		if list {
			ok = fetch.CheckList(ctx, a, cfg.Spool, os.Stdout, log)
		} else {
			ok = fetch.Check(ctx, a, cfg.Spool, os.Stdout, log)
		}
		if !ok {
			code = 1
		}
	}
	return code
}

// pick returns the accounts named in args, or all of them.
func pick(cfg *config.Config, args []string) ([]*config.Account, error) {
	if len(args) > 1 {
		return nil, errors.New("usage: fetchd check [-config FILE] [-list] [ACCOUNT]")
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
