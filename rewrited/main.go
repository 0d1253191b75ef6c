// Command rewrited routes fetched messages: it takes each file from
// incoming/, writes its envelope (X-Sender, X-Receiver) at the top and
// moves it to pickup/; what it cannot route goes to failed/ with the reason.
package main

import (
	"context"
	"os"

	"example.org/popspool/rewrited/worker"
	"example.org/popspool/shared/service"
	"example.org/popspool/shared/spool"
)

func main() {
	os.Exit(service.Run("rewrited", os.Args[1:], run))
}

func run(ctx context.Context, env *service.Env) error {
	s, err := spool.Open(env.Config.Spool, "rewrited", env.Log)
	if err != nil {
		return err
	}
	defer s.Close()
	w := &worker.Worker{S: s, Cfg: env.Config, Log: env.Log}
	if err := w.Recover(); err != nil {
		return err
	}
	return w.Run(ctx, env.Once)
}
