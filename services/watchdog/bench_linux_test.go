package watchdog

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/kwyre/kwyre/services/watchdog/scan"
)

// BenchmarkScan measures one full scan of this machine (every scanner but the
// boot medium), and each scanner alone, state file included for the full one.
// go test -run - -bench Scan ./services/watchdog/
func BenchmarkScan(b *testing.B) {
	mods, err := scan.NewModules("/proc/modules")
	if err != nil {
		b.Fatal(err)
	}
	gpu := scan.NewGPU("")
	defer gpu.Close()
	all := []scan.Scanner{scan.Processes{}, scan.Tracer{}, scan.Sockets{}, scan.FDs{}, scan.Links{}, mods, gpu}
	env, err := scan.NewEnv("/proc")
	if err != nil {
		b.Fatal(err)
	}
	procs := float64(len(env.Procs))

	b.Run("all", func(b *testing.B) {
		w, err := New(Config{Interval: time.Second, State: filepath.Join(b.TempDir(), "state.json"), Scanners: all})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := w.ScanOnce(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(procs, "processes")
	})
	b.Run("snapshot", func(b *testing.B) {
		for b.Loop() {
			if _, err := scan.NewEnv("/proc"); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, s := range all {
		b.Run(fmt.Sprint(s.Name()), func(b *testing.B) {
			for b.Loop() {
				env, err := scan.NewEnv("/proc")
				if err != nil {
					b.Fatal(err)
				}
				s.Scan(env)
			}
		})
	}
}
