package watchdog

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kwyre/kwyre/services/watchdog/scan"
)

// State is the watchdog's state file (/run/kwyre/watchdog/state.json), written
// after every scan. The inference service's /audit reads running and triggered
// from it. Metadata only.
type State struct {
	Running   bool           `json:"running"`
	Triggered bool           `json:"triggered"`
	LastScan  string         `json:"last_scan"` // RFC 3339 with nanoseconds
	Scans     int            `json:"scans"`
	Findings  []scan.Finding `json:"findings"`  // what the last scan saw
	Confirmed []scan.Finding `json:"confirmed"` // every finding confirmed so far
	Skipped   []string       `json:"skipped"`   // "gpu: no NVIDIA driver"
	Errors    []string       `json:"errors"`    // scanners that failed in the last scan
}

// MarshalJSON writes empty lists as [], never null.
func (s State) MarshalJSON() ([]byte, error) {
	for _, l := range []*[]scan.Finding{&s.Findings, &s.Confirmed} {
		if *l == nil {
			*l = []scan.Finding{}
		}
	}
	for _, l := range []*[]string{&s.Skipped, &s.Errors} {
		if *l == nil {
			*l = []string{}
		}
	}
	type plain State // without this method
	return json.Marshal(plain(s))
}

// WriteState replaces path atomically (write a temporary file beside it,
// rename) so readers never see half a file; the result is mode 0444.
func WriteState(path string, s State) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode watchdog state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write watchdog state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this finds nothing
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write watchdog state %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o444); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod watchdog state %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write watchdog state %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace watchdog state %s: %w", path, err)
	}
	return nil
}

// ReadState reads a state file.
func ReadState(path string) (State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return State{}, fmt.Errorf("read watchdog state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("parse watchdog state %s: %w", path, err)
	}
	return s, nil
}
