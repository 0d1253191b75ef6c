package harness

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Summary counts what flowed, from the daemons' structured logs.
type Summary struct {
	Fetched, Routed, Failed, Delivered, Deferred, Badmail int
	Problems                                              []string // error-level lines
}

// Summarize reads the logs of the flow.
func (f *Flow) Summarize() (Summary, error) {
	var s Summary
	for _, d := range Daemons {
		file, err := os.Open(filepath.Join(f.Logs, d+".log"))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return s, err
		}
		sc := bufio.NewScanner(file)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.add(sc.Bytes())
		}
		file.Close()
	}
	return s, nil
}

func (s *Summary) add(line []byte) {
	var l struct {
		Event   int    `json:"event"`
		Level   string `json:"level"`
		Message string `json:"message"`
		Error   string `json:"error"`
		Reason  string `json:"reason"`
	}
	if json.Unmarshal(line, &l) != nil {
		return
	}
	switch {
	case l.Event == 2002:
		s.Fetched++
	case l.Event == 3001:
		s.Routed++
	case l.Event >= 3002 && l.Event <= 3007 && l.Event != 3005:
		s.Failed++
	case l.Event == 4001:
		s.Delivered++
	case l.Event == 4002:
		s.Deferred++
	case l.Event == 4003 || l.Event == 4004:
		s.Badmail++
	}
	if l.Level == "error" || l.Level == "fatal" {
		s.Problems = append(s.Problems, fmt.Sprintf("event %d: %s %s%s", l.Event, l.Message, l.Error, l.Reason))
	}
}

// WaitFor polls cond every 100 ms until it holds or timeout passes.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return cond()
}

// Settled reports whether the pipeline has nothing in flight: the
// mailbox is empty and no file waits in incoming/, pickup/ or a tmp/.
func (f *Flow) Settled() bool {
	if f.Server.Stats().Left != 0 {
		return false
	}
	n := f.SpoolFiles()
	return n["incoming"]+n["pickup"]+n["tmp/fetchd"]+n["tmp/rewrited"]+n["tmp/deliverd"] == 0
}

// Check compares the Maildir with the messages that were put in the
// mailbox (by content): every one must be there exactly once,
// byte-identical after fetchd's trace lines.
func (f *Flow) Check(want [][]byte) (identical, missing, duplicated, strange int, err error) {
	got, err := f.Delivered()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	count := map[string]int{}
	for _, b := range got {
		orig, ok := f.Original(b)
		if !ok {
			strange++
			continue
		}
		count[string(orig)]++
	}
	for _, w := range want {
		switch n := count[string(Wire(w))]; {
		case n == 0:
			missing++
		case n == 1:
			identical++
		default:
			identical++
			duplicated += n - 1
		}
		delete(count, string(Wire(w)))
	}
	for _, n := range count {
		strange += n
	}
	return identical, missing, duplicated, strange, nil
}
