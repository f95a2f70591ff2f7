package supervisor

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// State is /run/kwyre/supervised.json: the pid of every running service.
type State struct {
	Pids map[string]int `json:"pids"`
}

// writeStateLocked rewrites the state file (s.mu held). A failure is
// printed: the watchdog then sees stale pids and alarms, which is the safe
// direction.
func (s *Supervisor) writeStateLocked() {
	if s.opt.StateFile == "" {
		return
	}
	if err := WriteState(s.opt.StateFile, State{Pids: s.pidsLocked()}); err != nil {
		s.out.printf("kwyre-init: %v\n", err)
	}
}

// WriteState atomically replaces path with st, mode 0444.
func WriteState(path string, st State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return WriteFileAtomic(path, append(b, '\n'), 0o444)
}

// ReadState reads a state file.
func ReadState(path string) (State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("decode %s: %w", path, err)
	}
	return st, nil
}

// WriteFileAtomic writes data to a temporary file beside path and renames
// it over path, so readers never see half a file.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, mode)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, werr)
	}
	return nil
}
