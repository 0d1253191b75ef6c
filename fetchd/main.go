// Command fetchd downloads mail from remote POP3 mailboxes into the spool's
// incoming/ folder, and deletes on the server only what is safely on disk.
package main

import (
	"context"
	"os"

	"example.org/popspool/fetchd/fetch"
	"example.org/popspool/shared/service"
	"example.org/popspool/shared/spool"
)

func main() {
	os.Exit(service.Run("fetchd", os.Args[1:], run))
}

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
	if env.Once {
		return f.Once(ctx)
	}
	return f.Run(ctx)
}
