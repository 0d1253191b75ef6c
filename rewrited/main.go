// Command rewrited routes fetched messages: it takes each file from
// incoming/, writes its envelope (X-Sender, X-Receiver) at the top and
// moves it to pickup/; what it cannot route goes to failed/ with the reason.
//
//	rewrited [-config FILE] [-once]
//	rewrited explain [-config FILE] [-filter] FILE
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"example.org/popspool/rewrited/worker"
	"example.org/popspool/shared/service"
	"example.org/popspool/shared/spool"
)

func main() {
	os.Exit(service.Run("rewrited", os.Args[1:], run, explainCommand()))
}

func run(ctx context.Context, env *service.Env) error {
	s, err := spool.Open(env.Config.Spool, "rewrited", env.Log)
	if err != nil {
		return err
	}
	defer s.Close()
	w := worker.New(s, env.Config, env.Log)
	if err := w.Recover(ctx); err != nil {
		return err
	}
	env.Ready() // systemd's READY=1: recovery is done (optional; see service.Env.Ready)
	return w.Run(ctx, env.Once)
}

// explainCommand is "rewrited explain [-filter] FILE": the dry run of
// routing one message, which changes nothing.
func explainCommand() service.Command {
	var runFilter *bool
	return service.Command{
		Name: "explain", Args: "[-filter] FILE",
		Help:  "show how a message file would be routed and rewritten, changing nothing",
		Flags: func(fs *flag.FlagSet) { runFilter = fs.Bool("filter", false, "also run the filter command") },
		Run: func(ctx context.Context, env *service.Env) int {
			if len(env.Args) != 1 {
				fmt.Fprintln(os.Stderr, "usage: rewrited explain [-config FILE] [-filter] FILE")
				return 2
			}
			w := worker.New(nil, env.Config, env.Log)
			if err := w.Explain(ctx, env.Args[0], *runFilter, os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, "explain:", err)
				return 1
			}
			return 0
		},
	}
}
