package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// wrapped returns the process a wrapper (Options.Wrap) started: its first
// child, from /proc.
func wrapped(p *os.Process) (*os.Process, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.Pid, p.Pid))
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return nil, fmt.Errorf("process %d has no child", p.Pid)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return nil, err
	}
	return os.FindProcess(pid)
}
