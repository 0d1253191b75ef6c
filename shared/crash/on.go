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

	poisonAt, poisonMark string
)

func init() {
	poisonAt, poisonMark, _ = strings.Cut(os.Getenv("POPSPOOL_POISON"), ":")
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

// Poison kills the process with SIGKILL whenever it passes the point that
// POPSPOOL_POISON=<point>:<mark> names with a subject (a sender address)
// holding mark: a message that kills its daemon every time it is handled,
// the poison of issue 11.2.
func Poison(name, subject string) {
	if name != poisonAt || poisonMark == "" || !strings.Contains(subject, poisonMark) {
		return
	}
	os.Stderr.WriteString(`{"level":"warn","poison":"` + name + `"}` + "\n")
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
