//go:build !windows

package service

import (
	"context"
	"fmt"
	"os"
)

// serviceCommand is Windows's: elsewhere systemd (or another service
// manager) runs the daemons from their units.
func serviceCommand(name, _ string, _ []string, _ func(context.Context, *Env) error) int {
	fmt.Fprintf(os.Stderr, "%s service: for the Windows Service Control Manager only; on Linux install the systemd units (make install; see docs/operations.md) and use systemctl\n", name)
	return 2
}
