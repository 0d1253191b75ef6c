package service

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"sync"
	"time"

	"example.org/popspool/shared/config"
	"example.org/popspool/shared/event"
	"example.org/popspool/shared/liveness"
	"example.org/popspool/shared/metrics"
	"example.org/popspool/shared/notify"
	"example.org/popspool/shared/status"
)

// ReadyGrace is how long Run waits for a daemon's own Env.Ready before
// it declares the daemon ready itself.
var ReadyGrace = 2 * time.Second

// ScanEvery is how often a service scans the spool folders, updates its
// status file (when something changed, else every status.Heartbeat) and
// its STATUS= line, and pings the watchdog (more often if WatchdogSec
// asks for it).
var ScanEvery = 5 * time.Second

// control is what a signal or the Windows Service Control Manager asks.
type control int

const (
	ctlStop control = iota + 1
	ctlReload
)

// supervisor runs a daemon as a service: run, again after each reload,
// until it is told to stop or fails.
type supervisor struct {
	name  string
	run   func(ctx context.Context, env *Env) error
	ctl   <-chan control
	out   *tee
	track *status.Tracker

	mu        sync.Mutex
	root      string    // the spool, for scans and the status file
	saving    bool      // ready once: the status file may be written
	saved     []byte    // what was last written, without "updated"
	savedAt   time.Time // when
	saveErr   string    // the last failure, logged once
	sentState string    // the last STATUS= sent
	notifyErr bool      // a notify failure was logged
	log       *Env      // the current generation, for the supervisor's own events

	metrics     *metrics.Server
	metricsAddr string

	beats   *liveness.Monitor // the daemon's work loops
	stalled string            // the loop reported stalled (event 1028), "" if none
}

func newSupervisor(name string, run func(context.Context, *Env) error, out io.Writer, ctl <-chan control) *supervisor {
	track := status.NewTracker(name, version())
	return &supervisor{name: name, run: run, ctl: ctl, track: track, out: newTee(out, track), beats: liveness.Default}
}

// serve runs the daemon described by env (its logger is replaced by one
// that feeds the status) and returns the exit code.
func (s *supervisor) serve(env *Env) int {
	env = s.rebind(env.Config)
	event.Emit(&env.Log, event.Started).Str("config", env.Config.File).Str("spool", env.Config.Spool).Bool("once", false).Str("version", version()).Int("procs", runtime.GOMAXPROCS(0)).Msg(s.name + " started")
	s.track.SetState("starting", env.Config.File)
	s.notify(notify.Status("starting; recovering unfinished work"))
	ctx, cancel := context.WithCancel(context.Background())
	loopDone := make(chan struct{})
	go func() { s.loop(ctx); close(loopDone) }()
	defer func() {
		cancel()
		<-loopDone
		s.closeMetrics()
	}()
	for {
		next, err := s.generation(env)
		if err != nil && !errors.Is(err, context.Canceled) {
			event.Emit(&env.Log, event.StoppedOnError).Err(err).Msg(s.name + " stopped on an error; the service manager restarts it and recovery runs")
			s.finish("failed")
			return 1
		}
		if next == nil {
			event.Emit(&env.Log, event.Stopped).Msg(s.name + " stopped")
			s.finish("stopped")
			return 0
		}
		env = next
		event.Emit(&env.Log, event.ConfigReloaded).Str("config", env.Config.File).Str("spool", env.Config.Spool).Msg("new config in force")
	}
}

// rebind returns the Env of a generation running with cfg, with the
// status-feeding logger, and points the scans and the metrics endpoint at
// cfg's spool and address.
func (s *supervisor) rebind(cfg *config.Config) *Env {
	n := &Env{Name: s.name, Config: cfg, Log: s.out.logger(s.name, cfg.Log)}
	s.mu.Lock()
	s.root = cfg.Spool
	s.log = n
	s.mu.Unlock()
	s.track.SetState("", cfg.File)
	s.startMetrics(n)
	return n
}

// generation calls run once. It returns the Env of the next generation
// when a reload ended this one, nil when the daemon stopped.
func (s *supervisor) generation(env *Env) (*Env, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	ready := make(chan struct{})
	var once sync.Once
	env.ready = func() { once.Do(func() { close(ready) }) }
	go func() { done <- s.run(ctx, env) }()
	grace := time.NewTimer(ReadyGrace)
	defer grace.Stop()
	var next *Env
	stopping := false
	for {
		select {
		case err := <-done:
			return next, err
		case <-ready:
			ready = nil
			s.ready()
		case <-grace.C:
			env.Ready()
		case c := <-s.ctl:
			switch {
			case c == ctlStop && !stopping:
				stopping, next = true, nil
				s.track.SetState("stopping", "")
				s.notify(notify.Stopping + "\n" + notify.Status("stopping: finishing the file in hand"))
				cancel()
			case c == ctlReload && !stopping && next == nil:
				if next = s.reload(env); next != nil {
					cancel()
				}
			}
		}
	}
}

// reload reads the config again. A broken one is logged and refused.
func (s *supervisor) reload(env *Env) *Env {
	s.notify(notify.ReloadingNow())
	cfg, err := config.Load(env.Config.File)
	if err != nil {
		event.Emit(&env.Log, event.ReloadFailed).Str("config", env.Config.File).Err(err).Msg("new config refused; going on with the old one")
		s.notify(notify.Ready + "\n" + notify.Status("running; config reload refused, see event 1016"))
		return nil
	}
	s.track.SetState("reloading", "")
	return s.rebind(cfg)
}

func (s *supervisor) ready() {
	s.track.SetState("running", "")
	s.mu.Lock()
	s.saving = true
	s.mu.Unlock()
	s.refresh(notify.Ready)
}

func (s *supervisor) finish(state string) {
	s.track.SetState(state, "")
	s.mu.Lock()
	saving := s.saving
	s.mu.Unlock()
	if saving {
		f := s.track.Snapshot()
		s.save(&f, true)
	}
}

// loop scans the spool every ScanEvery (or at half WatchdogSec, if that
// is shorter) until ctx ends. The watchdog ping follows a completed scan,
// so a daemon whose spool hangs (a dead disk, a hung network share) stops
// pinging and systemd restarts it; and it is sent only while every work
// loop of the daemon makes progress or waits by choice (package
// liveness), so a hung filter, session or deadlock stops it too.
func (s *supervisor) loop(ctx context.Context) {
	every, wd := ScanEvery, notify.WatchdogInterval()
	if wd > 0 && wd < every {
		every = wd
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ping := ""
			if s.working() && wd > 0 {
				ping = notify.Watchdog
			}
			s.refresh(ping)
		}
	}
}

// working reports whether no work loop is stalled. The first stall of a
// spell is logged (1028, naming the loop), and its end (1029).
func (s *supervisor) working() bool {
	stalls := s.beats.Stalled()
	s.mu.Lock()
	log, was := s.log, s.stalled
	if len(stalls) > 0 {
		s.stalled = stalls[0].Loop
	} else {
		s.stalled = ""
	}
	s.mu.Unlock()
	if log == nil {
		return len(stalls) == 0
	}
	switch {
	case len(stalls) > 0 && was == "":
		st := stalls[0]
		event.Emit(&log.Log, event.WorkStalled).Str("loop", st.Loop).Time("last_progress", st.Since).
			Str("budget", st.Budget.String()).Int("stalled", len(stalls)).
			Msg("a work loop is stuck; watchdog pings withheld so the service manager restarts the daemon")
	case len(stalls) == 0 && was != "":
		event.Emit(&log.Log, event.WorkResumed).Str("loop", was).Msg("work loops make progress again")
	}
	return len(stalls) == 0
}

// refresh scans the folders, saves the status file if due and sends
// extra (READY=1, WATCHDOG=1) with the STATUS= line if it changed.
func (s *supervisor) refresh(extra string) {
	s.mu.Lock()
	root := s.root
	s.mu.Unlock()
	s.track.SetFolders(status.Scan(root))
	f := s.track.Snapshot()
	s.save(&f, false)
	line := notify.Status(f.Summary())
	s.mu.Lock()
	if line != s.sentState {
		s.sentState = line
		if extra != "" {
			extra += "\n"
		}
		extra += line
	}
	s.mu.Unlock()
	if extra != "" {
		s.notify(extra)
	}
}

// save writes the status file when it changed or the heartbeat is due
// (or always, with force), once the daemon is ready.
func (s *supervisor) save(f *status.File, force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.saving {
		return
	}
	f.Updated = time.Time{}
	key, _ := json.Marshal(f)
	now := time.Now()
	if !force && string(key) == string(s.saved) && now.Sub(s.savedAt) < status.Heartbeat {
		return
	}
	f.Updated = now.UTC()
	if err := status.Save(s.root, f); err != nil {
		if err.Error() != s.saveErr {
			s.saveErr = err.Error()
			event.Emit(&s.log.Log, event.StatusFailed).Err(err).Msg("status file not updated; the daemon works on")
		}
		return
	}
	s.saved, s.savedAt, s.saveErr = key, now, ""
}

// notify sends state to systemd; the first failure is logged.
func (s *supervisor) notify(state string) {
	err := notify.Send(state)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil && !s.notifyErr && s.log != nil {
		s.notifyErr = true
		event.Emit(&s.log.Log, event.NotifyFailed).Err(err).Msg("cannot tell the service manager our state (NOTIFY_SOCKET)")
	}
}

// startMetrics starts, moves or stops the metrics endpoint to match the
// config of env.
func (s *supervisor) startMetrics(env *Env) {
	addr := env.Config.Metrics.Listen(s.name)
	if addr == s.metricsAddr {
		return
	}
	s.closeMetrics()
	s.metricsAddr = addr
	if addr == "" {
		return
	}
	m, err := metrics.Listen(addr, s.track.Snapshot)
	if err != nil {
		event.Emit(&env.Log, event.MetricsFailed).Str("listen", addr).Err(err).Msg("metrics endpoint off; the daemon works on")
		s.metricsAddr = "" // try again at the next reload
		return
	}
	s.metrics = m
	event.Emit(&env.Log, event.MetricsOn).Str("listen", m.Addr.String()).Msg("metrics at http://" + m.Addr.String() + "/metrics")
}

func (s *supervisor) closeMetrics() {
	if s.metrics != nil {
		s.metrics.Close()
		s.metrics = nil
	}
	s.metricsAddr = ""
}
