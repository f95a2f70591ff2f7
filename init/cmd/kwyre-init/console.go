package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/kwyre/kwyre/init/config"
)

// consoleActivePath lists the kernel's consoles; the last is /dev/console.
var consoleActivePath = "/sys/class/tty/console/active"

// chatOnConsole reports whether a service with a terminal (a chat) runs on
// the terminal that is also /dev/console, where init copies the services'
// output: their log lines would then land in the middle of the chat.
func chatOnConsole(cfg *config.Config) bool {
	b, err := os.ReadFile(consoleActivePath)
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return false
	}
	dev := f[len(f)-1]
	if dev == "tty0" { // the foreground virtual terminal: tty1 at boot
		dev = "tty1"
	}
	for _, s := range cfg.Services {
		if s.TTY != "" && filepath.Base(s.TTY) == dev {
			return true
		}
	}
	return false
}
