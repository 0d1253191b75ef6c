package service

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"example.org/popspool/shared/admin"
)

// adminCommands are the operator's commands every daemon has (the
// postsuper of popspool): they act on the spool alone, by the daemons'
// own renames, so they work while the daemons run and while they are
// stopped, and each action is recorded in status/actions.log.
func adminCommands() []Command {
	return []Command{queueCommand(), showCommand(), requeueCommand(),
		idsCommand("hold", "keep messages where they are, untouched by the daemons, until release", (*admin.Actions).Hold),
		idsCommand("release", "let held messages go on from where they were held", (*admin.Actions).Release),
		deleteCommand(), retrieveNowCommand(), consoleCommand()}
}

func queueCommand() Command {
	var f *admin.Filter
	return Command{Name: "queue", Args: "[FILTERS] [-json]",
		Help:  "the mailq of popspool: every message in the spool, one line each, and a total (filters: -folder -account -older -newer -sender -rcpt; queue -h)",
		Flags: func(fs *flag.FlagSet) { f = admin.QueueFlags(fs) },
		Run: func(_ context.Context, env *Env) int {
			if len(env.Args) > 0 {
				fmt.Fprintf(os.Stderr, "queue takes flags only, not %q\n", env.Args)
				return 2
			}
			if err := admin.Queue(env.Config, *f, f.JSON, os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			return 0
		}}
}

func showCommand() Command {
	return Command{Name: "show", Args: "ID",
		Help: "one message's top lines and its history: download, routing, each delivery attempt",
		Run: func(_ context.Context, env *Env) int {
			if len(env.Args) != 1 {
				fmt.Fprintf(os.Stderr, "usage: %s show ID\n", env.Name)
				return 2
			}
			if err := admin.Show(env.Config, env.Args[0], os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			return 0
		}}
}

// withActions opens the spool of env's config for an admin command.
func withActions(env *Env, do func(a *admin.Actions) int) int {
	a, err := admin.Open(env.Config.Spool, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := do(a)
	if err := a.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "status/actions.log:", err)
		return 1
	}
	return code
}

// counted turns the result of an action into an exit code: 1 when a
// message could not be acted on (each one was named on stdout).
func counted(verb string, n int, err error) int {
	fmt.Printf("%d %s\n", n, verb)
	if err != nil {
		return 1
	}
	return 0
}

func idsCommand(name, help string, act func(*admin.Actions, []string) (int, error)) Command {
	return Command{Name: name, Args: "ID...", Help: help,
		Run: func(_ context.Context, env *Env) int {
			if len(env.Args) == 0 {
				fmt.Fprintf(os.Stderr, "usage: %s %s ID...\n", env.Name, name)
				return 2
			}
			return withActions(env, func(a *admin.Actions) int {
				n, err := act(a, env.Args)
				return counted(map[string]string{"hold": "held", "release": "released"}[name], n, err)
			})
		}}
}

func requeueCommand() Command {
	folders := map[string]*bool{}
	return Command{Name: "requeue", Args: "[-deferred|-badmail|-failed] [ID...]",
		Help: "send messages back into the flow now: deferred and badmail to pickup/, failed to incoming/",
		Flags: func(fs *flag.FlagSet) {
			for _, f := range []string{"deferred", "badmail", "failed"} {
				folders[f] = fs.Bool(f, false, "every message in "+f+"/ (not the held ones)")
			}
		},
		Run: func(_ context.Context, env *Env) int {
			var whole []string
			for f, on := range folders {
				if *on {
					whole = append(whole, f)
				}
			}
			if len(whole) == 0 && len(env.Args) == 0 {
				fmt.Fprintf(os.Stderr, "usage: %s requeue [-deferred|-badmail|-failed] [ID...]\n", env.Name)
				return 2
			}
			return withActions(env, func(a *admin.Actions) int {
				total, err := a.Requeue(env.Args)
				for _, f := range whole {
					n, ferr := a.RequeueFolder(f, nil)
					total += n
					if ferr != nil {
						err = ferr
					}
				}
				return counted("requeued", total, err)
			})
		}}
}

func deleteCommand() Command {
	var yes *bool
	return Command{Name: "delete", Args: "[-yes] ID...",
		Help:  "delete messages for good (the only copy: the ISP's server no longer has them)",
		Flags: func(fs *flag.FlagSet) { yes = fs.Bool("yes", false, "do not ask") },
		Run: func(_ context.Context, env *Env) int {
			if len(env.Args) == 0 {
				fmt.Fprintf(os.Stderr, "usage: %s delete [-yes] ID...\n", env.Name)
				return 2
			}
			if !*yes && !confirm(os.Stdin, os.Stdout, fmt.Sprintf("delete %d message(s) for good? [y/N] ", len(env.Args))) {
				fmt.Fprintln(os.Stderr, "nothing deleted (give -yes to delete without asking)")
				return 1
			}
			return withActions(env, func(a *admin.Actions) int {
				n, err := a.Delete(env.Args)
				return counted("deleted", n, err)
			})
		}}
}

// confirm asks on out and reads the answer from in; no terminal, or no
// answer, is no.
func confirm(in *os.File, out io.Writer, question string) bool {
	if fi, err := in.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	fmt.Fprint(out, question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}

func retrieveNowCommand() Command {
	var rearm *bool
	return Command{Name: "retrieve-now", Args: "[-rearm] [ACCOUNT]",
		Help: "have fetchd poll every account (or the one named) now, and retry messages set aside",
		Flags: func(fs *flag.FlagSet) {
			rearm = fs.Bool("rearm", false, "also resume accounts stopped after refused logins (always so for a named account)")
		},
		Run: func(_ context.Context, env *Env) int {
			if len(env.Args) > 1 {
				fmt.Fprintf(os.Stderr, "usage: %s retrieve-now [-rearm] [ACCOUNT]\n", env.Name)
				return 2
			}
			return withActions(env, func(a *admin.Actions) int {
				taken, err := a.RetrieveNow(env.Config, strings.Join(env.Args, ""), *rearm, 5*time.Second)
				switch {
				case err != nil:
					fmt.Fprintln(os.Stderr, err)
					return 1
				case !taken:
					return 1
				}
				return 0
			})
		}}
}
