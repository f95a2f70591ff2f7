package supervisor

import (
	"github.com/kwyre/kwyre/init/runstate"
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
	if err := runstate.WriteJSON(s.opt.StateFile, State{Pids: s.pidsLocked()}); err != nil {
		s.out.printf("kwyre-init: %v\n", err)
	}
}

// ReadState reads a state file.
func ReadState(path string) (State, error) {
	var st State
	err := runstate.ReadJSON(path, &st)
	return st, err
}
