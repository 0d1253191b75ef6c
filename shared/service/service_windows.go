//go:build windows

package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"github.com/rs/zerolog"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"

	"example.org/popspool/shared/config"
	_ "example.org/popspool/shared/service/msgtable" // the Event Log message file
)

// serviceName is the name under the Service Control Manager and the
// Event Log source: popspool-fetchd, as the systemd unit.
func serviceName(daemon string) string { return "popspool-" + daemon }

// serviceCommand handles "<daemon> service install|uninstall|start|stop|run".
func serviceCommand(name, path string, args []string, run func(context.Context, *Env) error) int {
	if len(args) != 1 {
		fmt.Fprintf(os.Stderr, "usage: %s service install|uninstall|start|stop|run [-config FILE]\n", name)
		return 2
	}
	var err error
	switch args[0] {
	case "install":
		err = install(name, path)
	case "uninstall":
		err = uninstall(name)
	case "start":
		err = startStop(name, false)
	case "stop":
		err = startStop(name, true)
	case "run":
		return runService(name, path, run)
	default:
		fmt.Fprintf(os.Stderr, "%s service: %q is not install, uninstall, start, stop or run\n", name, args[0])
		return 2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s service %s: %v\n", name, args[0], err)
		return 1
	}
	return 0
}

// install registers the daemon to start at boot, as the virtual account
// NT SERVICE\popspool-<daemon>, restarting after a failure, with the
// config at path (checked first) and an Event Log source.
func install(name, path string) error {
	if os.Getenv("POPSPOOL_CONFIG") == "" && path == config.DefaultPath {
		path = filepath.Join(os.Getenv("ProgramData"), "popspool", "popspool.toml")
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if _, err := config.Load(path); err != nil {
		return fmt.Errorf("the config has errors; fix them first:\n%v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("%w (run it as an administrator)", err)
	}
	defer m.Disconnect()
	sn := serviceName(name)
	s, err := m.CreateService(sn, exe, mgr.Config{
		DisplayName:      "popspool " + name,
		Description:      "popspool " + name + ": POP3 to SMTP mail connector (docs/operations.md)",
		StartType:        mgr.StartAutomatic,
		ServiceStartName: `NT SERVICE\` + sn,
	}, "service", "run", "-config", path)
	if err != nil {
		return err
	}
	defer s.Close()
	delayed := uint32(1)
	if err := optional("delayed automatic start", windows.ChangeServiceConfig2(s.Handle,
		windows.SERVICE_CONFIG_DELAYED_AUTO_START_INFO, (*byte)(unsafe.Pointer(&delayed)))); err != nil {
		return err
	}
	restart := []mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 5 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 2 * time.Minute},
	}
	if err := s.SetRecoveryActions(restart, 24*3600); err != nil {
		return err
	}
	if err := optional("restart after an exit with an error", s.SetRecoveryActionsOnNonCrashFailures(true)); err != nil {
		return err
	}
	// Ninety seconds to finish the file in hand when Windows shuts down.
	preshutdown := uint32(90 * 1000)
	if err := optional("90 s to finish at shutdown", windows.ChangeServiceConfig2(s.Handle,
		windows.SERVICE_CONFIG_PRESHUTDOWN_INFO, (*byte)(unsafe.Pointer(&preshutdown)))); err != nil {
		return err
	}
	if err := registerSource(sn, exe); err != nil {
		fmt.Fprintf(os.Stderr, "warning: Event Log source %s: %v\n", sn, err)
	}
	fmt.Printf("installed %s (config %s, account NT SERVICE\\%s, automatic start, restarted on failure)\nstart it with: %s service start\n", sn, path, sn, name)
	return nil
}

// optional turns the failure of a service setting that this Service
// Control Manager does not know (ERROR_INVALID_LEVEL: Wine's, or an old
// Windows) into a warning: the service works without it.
func optional(what string, err error) error {
	if errors.Is(err, windows.ERROR_INVALID_LEVEL) || errors.Is(err, windows.ERROR_NOT_SUPPORTED) {
		fmt.Fprintf(os.Stderr, "warning: %s not set: this Service Control Manager does not support it (%v)\n", what, err)
		return nil
	}
	return err
}

// registerSource makes sn an Event Log source whose message file is exe,
// which carries popspool's message table (package msgtable), so that
// Event Viewer shows each entry's text without "The description for
// Event ID ... cannot be found". A source left by an earlier install,
// perhaps one registering EventCreate.exe, is replaced.
func registerSource(sn, exe string) error {
	const types = eventlog.Error | eventlog.Warning | eventlog.Info
	err := eventlog.Install(sn, exe, false, types)
	if err == nil || eventlog.Remove(sn) != nil {
		return err
	}
	return eventlog.Install(sn, exe, false, types)
}

func uninstall(name string) error {
	if err := startStop(name, true); err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
		fmt.Fprintf(os.Stderr, "stopping: %v\n", err)
	}
	m, err := mgr.Connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	s, err := m.OpenService(serviceName(name))
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Delete(); err != nil {
		return err
	}
	if err := eventlog.Remove(serviceName(name)); err != nil {
		fmt.Fprintf(os.Stderr, "warning: Event Log source: %v\n", err)
	}
	fmt.Printf("uninstalled %s; the spool and the config are left as they are\n", serviceName(name))
	return nil
}

// startStop starts the service, or (stop) stops it and waits up to two
// minutes for it to finish the file in hand.
func startStop(name string, stop bool) error {
	m, err := mgr.Connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	s, err := m.OpenService(serviceName(name))
	if err != nil {
		return err
	}
	defer s.Close()
	if !stop {
		err := s.Start()
		if errors.Is(err, windows.ERROR_SERVICE_ALREADY_RUNNING) {
			fmt.Printf("%s is running already\n", serviceName(name))
			return nil
		}
		return err
	}
	st, err := s.Control(svc.Stop)
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(2 * time.Minute); st.State != svc.Stopped; {
		if time.Now().After(deadline) {
			return errors.New("still stopping after two minutes")
		}
		time.Sleep(300 * time.Millisecond)
		if st, err = s.Query(); err != nil {
			return err
		}
	}
	return nil
}

// runService is what the Service Control Manager starts ("service run"):
// the daemon under svc.Run, its log in the Event Log.
func runService(name, path string, run func(context.Context, *Env) error) int {
	elog, err := eventlog.Open(serviceName(name))
	if err != nil {
		fmt.Fprintf(os.Stderr, "event log: %v\n", err)
		return 1
	}
	defer elog.Close()
	out := eventWriter{elog}
	env, err := load(name, path, false, nil, out)
	if err != nil {
		configInvalid(name, out, err)
		return 2
	}
	ctl := make(chan control, 4)
	sup := newSupervisor(name, run, out, ctl)
	sup.out.eventLog = true
	h := &handler{sup: sup, env: env, ctl: ctl}
	if err := svc.Run(serviceName(name), h); err != nil {
		fmt.Fprintf(os.Stderr, "%s service run: %v (only the Service Control Manager runs this; use %s service start)\n", name, err, name)
		return 1
	}
	return h.code
}

type handler struct {
	sup  *supervisor
	env  *Env
	ctl  chan control
	code int
}

// Execute runs the daemon and maps the service controls: stop, shutdown
// and preshutdown to SIGTERM's stop (reporting StopPending with a rising
// CheckPoint while the daemon finishes the file in hand), paramchange to
// SIGHUP's reload.
func (h *handler) Execute(_ []string, r <-chan svc.ChangeRequest, st chan<- svc.Status) (bool, uint32) {
	const accepts = svc.AcceptStop | svc.AcceptShutdown | svc.AcceptPreShutdown | svc.AcceptParamChange
	st <- svc.Status{State: svc.StartPending, WaitHint: 30000}
	done := make(chan int, 1)
	go func() { done <- h.sup.serve(h.env) }()
	st <- svc.Status{State: svc.Running, Accepts: accepts}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	checkpoint := uint32(0)
	for {
		select {
		case h.code = <-done:
			return h.code != 0, uint32(h.code)
		case <-tick.C:
			if checkpoint > 0 {
				checkpoint++
				st <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: 10000}
			}
		case c := <-r:
			switch c.Cmd {
			case svc.Interrogate:
				st <- c.CurrentStatus
			case svc.Stop, svc.Shutdown, svc.PreShutdown:
				if checkpoint == 0 {
					checkpoint = 1
					st <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: 10000}
					h.send(ctlStop)
				}
			case svc.ParamChange:
				h.send(ctlReload)
				st <- c.CurrentStatus
			}
		}
	}
}

// send passes c on without blocking the control handler; a control
// that finds the queue full is one of several of its kind waiting.
func (h *handler) send(c control) {
	select {
	case h.ctl <- c:
	default:
	}
}

// eventWriter writes log lines into the Event Log, each with its event
// number as the Event ID.
type eventWriter struct{ l *eventlog.Log }

func (w eventWriter) Write(p []byte) (int, error) {
	id, lvl, text := eventRecord(p)
	var err error
	switch {
	case lvl >= zerolog.ErrorLevel && lvl < zerolog.NoLevel:
		err = w.l.Error(id, text)
	case lvl == zerolog.WarnLevel:
		err = w.l.Warning(id, text)
	default:
		err = w.l.Info(id, text)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}
