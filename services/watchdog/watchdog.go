package watchdog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"sort"
	"time"

	"github.com/kwyre/kwyre/services/watchdog/scan"
)

// Config says what the watchdog watches and where it reports.
type Config struct {
	ProcRoot string        // /proc
	Interval time.Duration // between scans; 5 s in the appliance
	State    string        // state file; "" = none
	// Supervised is init's list of children ("" = none). In the appliance
	// (Appliance true) it must be readable: it says which processes are
	// legitimate and which are protected.
	Supervised   string
	Appliance    bool
	Protect      []int // extra protected pids (development)
	InferencePID int   // overrides supervised.json's "inference"
	Scanners     []scan.Scanner
	Alarm        Alarm
	Log          *log.Logger // nil = discard
}

// Watchdog scans, confirms and raises the alarm.
type Watchdog struct {
	cfg     Config
	verdict *Verdict
	state   State
	errs    map[string]string // last error logged per scanner
	seen    map[string]bool   // findings logged already
}

// New checks cfg and returns a watchdog that has not scanned yet.
func New(cfg Config) (*Watchdog, error) {
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("watchdog: interval %v must be positive", cfg.Interval)
	}
	if len(cfg.Scanners) == 0 {
		return nil, errors.New("watchdog: no scanners")
	}
	if cfg.Appliance && cfg.Supervised == "" {
		return nil, errors.New("watchdog: appliance mode needs init's supervised list")
	}
	if cfg.Log == nil {
		cfg.Log = log.New(io.Discard, "", 0)
	}
	return &Watchdog{cfg: cfg, verdict: NewVerdict(), errs: map[string]string{}, seen: map[string]bool{}}, nil
}

// State returns the state after the last scan.
func (w *Watchdog) State() State { return w.state }

// Run scans at once and then every interval (or when a scanner asks, such as
// the boot medium going away) until ctx ends; it then marks the state file not
// running. Confirmed findings raise the alarm and the watchdog keeps scanning:
// init powers the machine off.
func (w *Watchdog) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	for _, s := range w.cfg.Scanners {
		if wk, ok := s.(scan.Waker); ok {
			go func(c <-chan struct{}) {
				for {
					select {
					case <-ctx.Done():
						return
					case <-c:
						select {
						case wake <- struct{}{}:
						default:
						}
					}
				}
			}(wk.Wake())
		}
	}
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := w.ScanOnce(); err != nil {
			w.cfg.Log.Printf("scan: %v", err)
		}
		select {
		case <-ctx.Done():
			w.state.Running = false
			if w.cfg.State != "" {
				if err := WriteState(w.cfg.State, w.state); err != nil {
					return err
				}
			}
			return nil
		case <-t.C:
		case <-wake:
		}
	}
}

// ScanOnce runs every scanner once, confirms, raises the alarm for what is
// newly confirmed and writes the state file. It returns the newly confirmed
// findings. An error means the scan itself could not be made or recorded;
// failing scanners are recorded in the state instead.
func (w *Watchdog) ScanOnce() ([]scan.Finding, error) {
	var findings []scan.Finding
	var skipped, scanErrs []string
	failed := map[string]bool{}
	var sup Supervised
	env, envErr := scan.NewEnv(w.cfg.ProcRoot)
	if envErr != nil {
		// Blind this scan: every scanner counts as failed, so what the last
		// scan saw carries over instead of being forgotten.
		scanErrs = append(scanErrs, "snapshot: "+scan.Printable(envErr.Error()))
		for _, s := range w.cfg.Scanners {
			failed[s.Name()] = true
		}
	} else {
		var supErr error
		sup, supErr = w.supervision(env)
		if supErr != nil {
			scanErrs = append(scanErrs, scan.Printable(supErr.Error()))
			if w.cfg.Appliance {
				failed[scan.Processes{}.Name()] = true // could not judge who init started
			}
		}
		for _, s := range w.cfg.Scanners {
			name := s.Name()
			got, err := s.Scan(env)
			findings = append(findings, got...)
			if reason, ok := scan.Skipped(err); ok {
				skipped = append(skipped, name+": "+reason)
				continue
			}
			if err != nil {
				failed[name] = true
				msg := name + ": " + scan.Printable(err.Error())
				scanErrs = append(scanErrs, msg)
				if w.errs[name] != msg {
					w.cfg.Log.Printf("scanner %s", msg)
				}
				w.errs[name] = msg
			} else {
				delete(w.errs, name)
			}
		}
	}
	sort.SliceStable(findings, func(i, j int) bool { return findings[i].Scanner < findings[j].Scanner })
	for _, f := range findings {
		if !w.seen[f.ID()] {
			w.seen[f.ID()] = true
			w.cfg.Log.Printf("finding: %s: %s", f.Scanner, f.What)
		}
	}

	confirmed := w.verdict.Observe(findings, failed)
	inference := w.cfg.InferencePID
	if inference == 0 {
		inference = sup.PIDs["inference"]
	}
	for _, f := range confirmed {
		w.cfg.Log.Printf("CONFIRMED intrusion: %s: %s", f.Scanner, f.What)
		if err := w.cfg.Alarm.Fire(f, inference); err != nil {
			w.cfg.Log.Printf("alarm: %v", err)
			scanErrs = append(scanErrs, "alarm: "+err.Error())
		}
	}

	w.state.Running = true
	w.state.Triggered = w.verdict.Triggered()
	w.state.LastScan = time.Now().UTC().Format(time.RFC3339Nano) // sub-second: readers judge staleness against short intervals
	w.state.Scans++
	w.state.Findings = findings
	w.state.Confirmed = append(w.state.Confirmed, confirmed...)
	w.state.Skipped = skipped
	w.state.Errors = scanErrs
	if w.cfg.State != "" {
		if err := WriteState(w.cfg.State, w.state); err != nil {
			return confirmed, errors.Join(envErr, err)
		}
	}
	return confirmed, envErr
}

// supervision fills env with what init says about its children.
func (w *Watchdog) supervision(env *scan.Env) (Supervised, error) {
	var sup Supervised
	var err error
	if w.cfg.Supervised != "" {
		sup, err = ReadSupervised(w.cfg.Supervised)
		if err != nil && !w.cfg.Appliance && errors.Is(err, os.ErrNotExist) {
			err = nil // development: no init
		}
	}
	for name, pid := range sup.PIDs {
		env.Protected[pid] = name
	}
	for _, pid := range w.cfg.Protect {
		if _, ok := env.Protected[pid]; !ok {
			env.Protected[pid] = "protected"
		}
	}
	env.Supervised = w.cfg.Appliance && err == nil
	env.InferencePID = w.cfg.InferencePID
	if env.InferencePID == 0 {
		env.InferencePID = sup.PIDs["inference"]
	}
	return sup, err
}
