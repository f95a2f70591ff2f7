// Command hello-init is a trivial PID 1 for developing the image pipeline
// without the real init: it prints a line with the kernel's uptime and
// powers the machine off.
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	up, _ := os.ReadFile("/proc/uptime")
	if len(up) == 0 {
		_ = syscall.Mount("proc", "/proc", "proc", 0, "")
		up, _ = os.ReadFile("/proc/uptime")
	}
	fmt.Printf("hello-init: up %s", up)
	syscall.Sync()
	_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}
