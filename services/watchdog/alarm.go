package watchdog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/kwyre/kwyre/services/watchdog/scan"
)

// Alarm acts on a confirmed finding: the inference service gets its wipe
// signal (SIGUSR1: wipe every session, keep serving) first, then init gets
// one JSON line {"scanner":...,"what":...} on the report pipe and powers off.
type Alarm struct {
	Report io.Writer // init's pipe (KWYRE_REPORT_FD); nil in development
}

// Fire raises the alarm for f; inferencePID 0 means no service to wipe.
// Both steps are tried even when one fails.
func (a *Alarm) Fire(f scan.Finding, inferencePID int) error {
	var errs []error
	if inferencePID > 0 {
		if err := syscall.Kill(inferencePID, syscall.SIGUSR1); err != nil {
			errs = append(errs, fmt.Errorf("signal inference pid %d: %w", inferencePID, err))
		}
	}
	if a.Report != nil {
		line, err := json.Marshal(struct {
			Scanner string `json:"scanner"`
			What    string `json:"what"`
		}{f.Scanner, f.What})
		if err == nil {
			_, err = a.Report.Write(append(line, '\n'))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("report to init: %w", err))
		}
	}
	return errors.Join(errs...)
}
