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
	if len(os.Args) > 1 && os.Args[1] == "explain" {
		os.Exit(explain(os.Args[2:]))
	}
	os.Exit(service.Run("rewrited", os.Args[1:], run))
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

// explain is the dry run of `rewrited explain FILE`.
func explain(args []string) int {
	fs := flag.NewFlagSet("rewrited explain", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "config file")
	runFilter := fs.Bool("filter", false, "also run the filter command")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: rewrited explain [-config FILE] [-filter] FILE")
		return 2
	}
	flagArgs := []string{}
	if *cfgPath != "" {
		flagArgs = append(flagArgs, "-config", *cfgPath)
	}
	env, err := service.Setup("rewrited", flagArgs, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	w := worker.New(nil, env.Config, env.Log)
	if err := w.Explain(context.Background(), fs.Arg(0), *runFilter, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "explain:", err)
		return 1
	}
	return 0
}
