package builder

import (
	"github.com/kwyre/kwyre/image/disk"
	"github.com/kwyre/kwyre/init/config"
)

// Paths inside the appliance (the shared runtime contract).
const (
	ModelPath       = "/model/model.gguf"
	ManifestPath    = "/etc/kwyre/manifest"
	ListenAddr      = "127.0.0.1:8000"
	inferenceKey    = "/run/kwyre/inference/api-key"
	consoleKey      = "/run/kwyre/console/api-key"
	watchdogState   = "/run/kwyre/watchdog/state.json"
	integrityResult = "/run/kwyre/integrity.json"
	// BootDevice is the watchdog's -boot-device: the image's EFI system
	// partition by its GPT name; pulling the disk that holds it powers off.
	BootDevice = "partname:" + disk.ESPPartitionName
	// BootDeviceWait is how long the watchdog waits for it at start (a USB
	// stick's partitions appear a moment after the controller's).
	BootDeviceWait = "15s"
)

// Service uids (the shared contract).
const (
	uidInference = 801
	uidWatchdog  = 802
	uidConsole   = 803
)

// Services returns the supervised children init starts, in start order.
func Services() []config.Service {
	console := func(name, mode, tty string, env []string) config.Service {
		return config.Service{
			Name: name,
			Path: "/bin/kwyre-console",
			// init opens the terminal and hands it over as stdin/stdout
			// (the console's uid cannot open /dev/tty* itself).
			Args: []string{"-mode", mode, "-url", "http://" + ListenAddr, "-api-key-file", consoleKey},
			Env:  env,
			UID:  uidConsole, GID: uidConsole,
			NetNS:   true,
			TTY:     tty,
			Restart: config.RestartBackoff,
		}
	}
	return []config.Service{
		{
			Name: "inference",
			Path: "/bin/kwyre-inference",
			Args: []string{
				"-model", ModelPath,
				"-listen", ListenAddr,
				"-api-key-file", inferenceKey,
				"-watchdog-state", watchdogState,
				"-integrity-file", integrityResult,
			},
			UID: uidInference, GID: uidInference,
			NetNS:   true,
			Restart: config.RestartBackoff,
		},
		{
			Name: "watchdog",
			Path: "/bin/kwyre-watchdog",
			Args: []string{"-appliance"},
			UID:  uidWatchdog, GID: uidWatchdog,
			Caps:    []string{"CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "CAP_KILL"},
			Restart: config.RestartCritical,
		},
		console("console-tty1", "tui", "/dev/tty1", []string{"TERM=linux"}),
		console("console-serial", "line", "/dev/ttyS0", []string{"TERM=vt100"}),
	}
}
