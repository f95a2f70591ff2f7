package shutdown

import (
	"os"
	"os/signal"
	"syscall"
)

// Signals that end the appliance: SIGTERM (a request), SIGINT (what the
// kernel sends init on Ctrl-Alt-Del once DisableCtrlAltDel ran) and SIGPWR
// (power failure, from the kernel or a UPS).
var Signals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGPWR}

// NotifySignals sends a reason to trig for each of Signals received,
// never blocking: when trig is full a shutdown is already queued.
func NotifySignals(trig chan<- string) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, Signals...)
	go func() {
		for s := range ch {
			why := "signal " + s.String()
			if s == syscall.SIGINT {
				why = "Ctrl-Alt-Del (SIGINT)"
			}
			select {
			case trig <- why:
			default: // a shutdown is already queued
			}
		}
	}()
}
