package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Proc is one running daemon.
type Proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string // its log file, and the log's size when it started
	from int64
}

// Start runs daemon name in service mode (or with -once), its log
// appended to Logs/<name>.log.
func (f *Flow) Start(name string, extra ...string) error {
	return f.StartEnv(name, nil, extra...)
}

// StartEnv is Start with extra environment variables ("K=V").
func (f *Flow) StartEnv(name string, env []string, extra ...string) error {
	if p := f.procs[name]; p != nil && !p.Exited() {
		return fmt.Errorf("%s is already running", name)
	}
	log, err := os.OpenFile(filepath.Join(f.Logs, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	var from int64
	if fi, err := log.Stat(); err == nil {
		from = fi.Size()
	}
	argv := append([]string{filepath.Join(f.bins, exe(name)), "-config", f.Config}, extra...)
	if f.Opt.Wrap != nil {
		argv = f.Opt.Wrap(name, argv)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{cmd: cmd, done: make(chan struct{}), log: log.Name(), from: from}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	f.procs[name] = p
	return nil
}

// Run runs daemon name with -once and waits for it.
func (f *Flow) Run(name string, timeout time.Duration) error {
	if err := f.Start(name, "-once"); err != nil {
		return err
	}
	p := f.procs[name]
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s -once did not finish in %v", name, timeout)
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL to daemon name and waits for it to die.
func (f *Flow) Kill(name string) error {
	p := f.procs[name]
	if p == nil || p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.done
	return nil
}

// Stop asks daemon name to stop (SIGTERM, or a kill on Windows) and waits
// up to timeout, then kills it. It returns an error if the daemon had to be
// killed or exited non-zero.
func (f *Flow) Stop(name string, timeout time.Duration) error {
	p := f.procs[name]
	if p == nil || p.Exited() {
		return nil
	}
	proc := p.cmd.Process
	if f.Opt.Wrap != nil { // the daemon is the wrapper's child: it gets the signal
		child, err := wrapped(proc)
		if err != nil {
			return fmt.Errorf("stop %s: %w", name, err)
		}
		proc = child
	}
	p.waitStarted(5 * time.Second)
	if err := terminate(proc); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v of SIGTERM", name, timeout)
	}
}

// waitStarted waits, up to limit, for the daemon's first log line: it
// handles SIGTERM from then on (its "started" line follows the signal
// set-up), while a SIGTERM in its first milliseconds kills it outright.
func (p *Proc) waitStarted(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && !p.Exited() {
		if fi, err := os.Stat(p.log); err == nil && fi.Size() > p.from {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Usage returns the resource usage of daemon name's last, ended run
// (a *syscall.Rusage on Unix), or nil.
func (f *Flow) Usage(name string) any {
	p := f.procs[name]
	if p == nil || !p.Exited() {
		return nil
	}
	return p.cmd.ProcessState.SysUsage()
}

// Exited reports whether daemon name was started and has ended.
func (f *Flow) Exited(name string) bool {
	p := f.procs[name]
	return p != nil && p.Exited()
}

// Running reports whether daemon name is running.
func (f *Flow) Running(name string) bool {
	p := f.procs[name]
	return p != nil && !p.Exited()
}

// Signal sends sig to daemon name if it is running (SIGSTOP and SIGCONT
// stall and resume it, for example).
func (f *Flow) Signal(name string, sig os.Signal) error {
	p := f.procs[name]
	if p == nil || p.Exited() {
		return fmt.Errorf("%s is not running", name)
	}
	return p.cmd.Process.Signal(sig)
}

// Pid returns the process id of daemon name, 0 if it is not running.
func (f *Flow) Pid(name string) int {
	p := f.procs[name]
	if p == nil || p.Exited() {
		return 0
	}
	return p.cmd.Process.Pid
}

// ExitErr returns how daemon name ended (nil for status 0) once it has
// exited; nil while it runs or if it never started.
func (f *Flow) ExitErr(name string) error {
	p := f.procs[name]
	if p == nil || !p.Exited() {
		return nil
	}
	return p.err
}
