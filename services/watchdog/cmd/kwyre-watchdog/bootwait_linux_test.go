package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBootDeviceWait: a partition that shows up in sysfs after the
// watchdog started (a USB stick enumerating) is found within the wait; one
// that never does fails once the wait is over.
func TestBootDeviceWait(t *testing.T) {
	sys := t.TempDir()
	part := filepath.Join(sys, "class", "block", "sda1")
	go func() {
		time.Sleep(400 * time.Millisecond)
		os.MkdirAll(part, 0o755)
		os.WriteFile(filepath.Join(part, "uevent"), []byte("MAJOR=8\nMINOR=1\nDEVNAME=sda1\nDEVTYPE=partition\nPARTN=1\nPARTNAME=kwyre-esp\n"), 0o644)
	}()
	os.MkdirAll(filepath.Join(sys, "class", "block"), 0o755)
	start := time.Now()
	bm, err := newBootMedium("partname:kwyre-esp", sys, 10*time.Second)
	if err != nil {
		t.Fatalf("partition appearing late: %v", err)
	}
	bm.Close()
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("found after %v, before it existed", d)
	}

	if _, err := newBootMedium("partname:nosuch", sys, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "waited 300ms") {
		t.Errorf("never there: %v, want an error after the wait", err)
	}
	if _, err := newBootMedium("partname:nosuch", sys, 0); err == nil || strings.Contains(err.Error(), "waited") {
		t.Errorf("no wait: %v, want an immediate error", err)
	}
}
