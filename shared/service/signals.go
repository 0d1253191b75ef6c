package service

import (
	"os"
	"os/signal"
	"syscall"
)

// watchSignals turns SIGTERM and SIGINT into ctlStop and SIGHUP into
// ctlReload until the returned function is called. (On Windows only
// Ctrl-C arrives this way; the Service Control Manager has its own
// channel, see service_windows.go.)
func watchSignals(ctl chan<- control) (stop func()) {
	c := make(chan os.Signal, 4)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case <-quit:
				return
			case sig := <-c:
				what := ctlStop
				if sig == syscall.SIGHUP {
					what = ctlReload
				}
				select {
				case ctl <- what:
				case <-quit:
					return
				}
			}
		}
	}()
	return func() {
		signal.Stop(c)
		close(quit)
	}
}
