// Command kwyre-init is the appliance's PID 1 (/init in the initramfs): it
// mounts, hardens, keeps the machine off the network, loads modules,
// verifies every file against the manifest, starts the services and
// supervises them, and powers off when asked, when a service fails for
// good, or when the watchdog confirms an intrusion. It never exits: a
// failure ends in a message on the console and a halt.
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
)

// The main goroutine keeps the main thread: threads that other goroutines
// taint and discard (namespaces, bounding set) must never be the thread
// group leader, which is what /proc/1 shows and which Go cannot discard.
func init() { runtime.LockOSThread() }

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "kwyre-init: not PID 1; refusing to run (it would take over and power off this machine)")
		os.Exit(2)
	}
	a := newAppliance(os.Stdout)
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(a.out, "kwyre-init: internal error: %v\n%s", r, debug.Stack())
			a.halt("internal error")
		}
	}()
	a.run()
}
