package service

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"example.org/popspool/shared/console"
)

// consoleCommand is the optional web page (package console): off unless
// an operator runs it, on loopback unless told otherwise.
func consoleCommand() Command {
	var opt console.Options
	return Command{Name: "console", Args: "[-listen ADDR] [-token-file FILE]",
		Help: "the web console: accounts, folders, queue, show, and the admin actions as buttons (token login; loopback by default)",
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&opt.Listen, "listen", console.DefaultListen, "host:port to listen on, or unix:/path for a Unix socket")
			fs.StringVar(&opt.TokenFile, "token-file", "", "the file whose first line is the login token (mode 600); default console.token beside the config")
			fs.BoolVar(&opt.AllowRemote, "allow-remote", false, "allow a -listen address that is not loopback (prefer ssh -L)")
		},
		Run: func(ctx context.Context, env *Env) int {
			if len(env.Args) > 0 {
				fmt.Fprintf(os.Stderr, "console takes flags only, not %q\n", env.Args)
				return 2
			}
			o := opt
			if o.TokenFile == "" {
				o.TokenFile = filepath.Join(filepath.Dir(env.Config.File), "console.token")
			}
			if o.AllowRemote {
				fmt.Fprintln(os.Stderr, "warning: -allow-remote: the console may listen beyond loopback, without TLS; reach it with ssh -L instead if you can")
			}
			if err := console.Serve(ctx, env.Config, o, env.Log); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			return 0
		}}
}
