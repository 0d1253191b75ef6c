//go:build crashpoints && unix

package crash

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

var (
	mu     sync.Mutex
	armed  string
	target int
	hits   int
)

func init() {
	name, k, ok := strings.Cut(os.Getenv("POPSPOOL_CRASH"), ":")
	if !ok {
		return
	}
	n, err := strconv.Atoi(k)
	if err != nil || n < 1 {
		return
	}
	armed, target = name, n
}

// Point kills the process with SIGKILL at the armed point's k-th hit.
func Point(name string) {
	if name != armed {
		return
	}
	mu.Lock()
	hits++
	now := hits == target
	mu.Unlock()
	if now {
		os.Stderr.WriteString(`{"level":"warn","crashpoint":"` + name + `","hit":` + strconv.Itoa(target) + "}\n")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
