package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/kwyre/kwyre/services/inference/scrub"
)

// WatchdogStatus is the watchdog as the audit sees it, read from the state
// file the watchdog rewrites after every scan.
type WatchdogStatus struct {
	Running   bool      `json:"running"`
	Triggered bool      `json:"triggered"`
	LastScan  time.Time `json:"last_scan,omitzero"`
	Scans     int       `json:"scans,omitempty"`
	Findings  int       `json:"findings,omitempty"`
	Skipped   []string  `json:"skipped,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// watchdogState is the file's format (shared contract).
type watchdogState struct {
	Running   bool            `json:"running"`
	Triggered bool            `json:"triggered"`
	LastScan  string          `json:"last_scan"`
	Scans     int             `json:"scans"`
	Findings  json.RawMessage `json:"findings"`
	Skipped   []string        `json:"skipped"`
}

// ReadWatchdogState reads the watchdog's state file at path. The watchdog
// counts as running only if it says so and its last scan is at most two
// scan intervals old; a missing file means it is not running.
func ReadWatchdogState(path string, interval time.Duration, now time.Time) WatchdogStatus {
	if path == "" {
		return WatchdogStatus{Detail: "no watchdog state file configured"}
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return WatchdogStatus{Detail: "state file absent: watchdog not running"}
	}
	if err != nil {
		return WatchdogStatus{Detail: "state file unreadable"}
	}
	var st watchdogState
	if err := json.Unmarshal(data, &st); err != nil {
		return WatchdogStatus{Detail: "state file malformed"}
	}
	ws := WatchdogStatus{Triggered: st.Triggered, Scans: st.Scans, Skipped: st.Skipped}
	var findings []json.RawMessage
	if json.Unmarshal(st.Findings, &findings) == nil {
		ws.Findings = len(findings)
	}
	last, err := time.Parse(time.RFC3339Nano, st.LastScan)
	if err != nil {
		ws.Detail = "state file has no valid last_scan"
		return ws
	}
	ws.LastScan = last
	age := now.Sub(last)
	switch {
	case !st.Running:
		ws.Detail = "watchdog reports it stopped"
	case age > 2*interval:
		ws.Detail = fmt.Sprintf("last scan %s ago, more than two scan intervals (%s)", age.Round(time.Second), interval)
	default:
		ws.Running = true
	}
	return ws
}

// auditReport is GET /audit's answer: DESIGN.md's fields, each filled from
// the running service.
type auditReport struct {
	Server           string           `json:"server"`
	Timestamp        string           `json:"timestamp"`
	ActiveSessions   int              `json:"active_sessions"`
	SecurityControls securityControls `json:"security_controls"`
	GPU              gpuAudit         `json:"gpu"`
	Integrity        any              `json:"integrity,omitempty"`
	Note             string           `json:"note"`
}

type securityControls struct {
	NetworkBinding      string         `json:"network_binding"`
	NetworkDrivers      string         `json:"network_drivers"` // NetworkKernel's one-line verdict
	NetworkKernel       NetworkKernel  `json:"network_kernel"`
	WeightIntegrity     string         `json:"weight_integrity"`
	ConversationStorage string         `json:"conversation_storage"`
	SessionWipe         string         `json:"session_wipe"`
	IntrusionWatchdog   WatchdogStatus `json:"intrusion_watchdog"`
	ContentLogging      string         `json:"content_logging"`
	FreedMemory         string         `json:"freed_memory"`
}

// freedMemory says whether memory the service frees (request buffers,
// net/http's pooled connection readers) is overwritten, read from the
// running process.
func freedMemory() string {
	if scrub.FreedClobbered() {
		return "overwritten by the garbage collector when freed (GODEBUG=clobberfree=1); two collections after every wipe"
	}
	return "NOT overwritten: the service runs without GODEBUG=clobberfree=1, so freed buffers keep their bytes until reused"
}
