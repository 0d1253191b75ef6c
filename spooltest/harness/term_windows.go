//go:build windows

package harness

import "os"

func terminate(p *os.Process) error { return p.Kill() }
