package watchdog

import (
	"encoding/json"
	"fmt"
	"os"
)

// Supervised is init's list of the children it runs, /run/kwyre/supervised.json:
// {"pids":{"inference":123,"watchdog":124,"console-tty1":125}}.
type Supervised struct {
	PIDs map[string]int `json:"pids"`
}

// ReadSupervised reads init's list of children.
func ReadSupervised(path string) (Supervised, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Supervised{}, fmt.Errorf("read supervised list: %w", err)
	}
	var s Supervised
	if err := json.Unmarshal(b, &s); err != nil {
		return Supervised{}, fmt.Errorf("parse supervised list %s: %w", path, err)
	}
	for name, pid := range s.PIDs {
		if pid <= 0 {
			return Supervised{}, fmt.Errorf("parse supervised list %s: %s has pid %d", path, name, pid)
		}
	}
	return s, nil
}
