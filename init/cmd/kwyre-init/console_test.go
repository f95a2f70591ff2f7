package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kwyre/kwyre/init/config"
)

func TestChatOnConsole(t *testing.T) {
	serial := &config.Config{Services: []config.Service{{Name: "inference"}, {Name: "console-serial", TTY: "/dev/ttyS0"}}}
	vt := &config.Config{Services: []config.Service{{Name: "console-tty1", TTY: "/dev/tty1"}}}
	tests := []struct {
		active string // "" = no such file
		cfg    *config.Config
		want   bool
	}{
		{"tty0 ttyS0\n", serial, true},
		{"ttyS0 tty0\n", serial, false}, // /dev/console is the VT; the serial chat is elsewhere
		{"ttyS0 tty0\n", vt, true},
		{"tty0 ttyS0\n", vt, false},
		{"ttyS1\n", serial, false},
		{"\n", serial, false},
		{"", serial, false},
		{"tty0 ttyS0\n", &config.Config{Services: []config.Service{{Name: "inference"}}}, false},
	}
	for _, tt := range tests {
		consoleActivePath = filepath.Join(t.TempDir(), "active")
		if tt.active != "" {
			if err := os.WriteFile(consoleActivePath, []byte(tt.active), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got := chatOnConsole(tt.cfg); got != tt.want {
			t.Errorf("active %q, services %+v: chatOnConsole = %v, want %v", tt.active, tt.cfg.Services, got, tt.want)
		}
	}
}
