// Command kwyre-watchdog is the appliance's intrusion watchdog (layer L6): it
// scans processes, tracers, sockets, file descriptors, links, kernel modules,
// the boot medium and GPU contexts every few seconds; a finding seen on two
// consecutive scans makes it send the inference service its wipe signal and
// report to init, which powers off.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kwyre/kwyre/services/watchdog"
	"github.com/kwyre/kwyre/services/watchdog/scan"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kwyre-watchdog:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		interval    = flag.Duration("interval", 5*time.Second, "time between scans")
		procRoot    = flag.String("proc", "/proc", "procfs mount point")
		sysRoot     = flag.String("sys", "/sys", "sysfs mount point")
		statePath   = flag.String("state", "/run/kwyre/watchdog/state.json", "state file written after every scan (\"\" = none)")
		supervised  = flag.String("supervised", "/run/kwyre/supervised.json", "init's list of supervised children")
		appliance   = flag.Bool("appliance", false, "appliance mode: every process init did not start is an intrusion")
		protect     = flag.String("protect", "", "comma-separated extra pids to protect from tracing (development)")
		inferPID    = flag.Int("inference-pid", 0, "pid of the inference service (default: from -supervised)")
		allowListen = flag.String("allow-listen", "127.0.0.1:8000", "comma-separated listeners allowed (the inference service's)")
		bootDevice  = flag.String("boot-device", "", "block device the appliance booted from; its removal powers off (\"\" = not watched)")
		bootWait    = flag.Duration("boot-device-wait", 0, "how long to wait at start for -boot-device to appear (a USB stick's partitions come late); then fail")
		nvmlLib     = flag.String("nvml-lib", "", "path of libnvidia-ml.so.1 (default: the loader's search path)")
		noGPU       = flag.Bool("no-gpu", false, "do not scan NVIDIA GPUs")
		only        = flag.String("scanners", "", "comma-separated scanners to run (default: all); e.g. tracer,processes")
		once        = flag.Bool("once", false, "scan once, print the findings as JSON and exit")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	logger := log.New(os.Stderr, "kwyre-watchdog: ", 0)

	pids, err := parsePIDs(*protect)
	if err != nil {
		return err
	}
	allow, err := scan.ParseAllowListen(*allowListen)
	if err != nil {
		return err
	}
	modules, err := scan.NewModules(filepath.Join(*procRoot, "modules"))
	if err != nil {
		return err
	}
	scanners := []scan.Scanner{
		scan.Processes{}, scan.Tracer{}, scan.Sockets{AllowListen: allow}, scan.FDs{},
		scan.Links{}, modules,
	}
	if *bootDevice != "" {
		bm, err := newBootMedium(*bootDevice, *sysRoot, *bootWait)
		if err != nil {
			return err
		}
		defer bm.Close()
		scanners = append(scanners, bm)
	}
	if !*noGPU {
		gpu := scan.NewGPU(*nvmlLib)
		defer gpu.Close()
		scanners = append(scanners, gpu)
	}

	if *only != "" {
		if scanners, err = selectScanners(scanners, *only); err != nil {
			return err
		}
	}

	cfg := watchdog.Config{
		ProcRoot: *procRoot, Interval: *interval, State: *statePath,
		Supervised: *supervised, Appliance: *appliance, Protect: pids,
		InferencePID: *inferPID, Scanners: scanners, Log: logger,
	}
	if *once {
		cfg.State = ""
	} else if fdEnv := os.Getenv("KWYRE_REPORT_FD"); fdEnv != "" {
		fd, err := strconv.Atoi(fdEnv)
		if err != nil || fd < 3 {
			return fmt.Errorf("KWYRE_REPORT_FD=%q: want a file descriptor number from 3 up", fdEnv)
		}
		report := os.NewFile(uintptr(fd), "report")
		if report == nil {
			return fmt.Errorf("KWYRE_REPORT_FD=%d: not an open file descriptor", fd)
		}
		cfg.Alarm.Report = report
	}
	w, err := watchdog.New(cfg)
	if err != nil {
		return err
	}

	if *once {
		if _, err := w.ScanOnce(); err != nil {
			return err
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(w.State())
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger.Printf("scanning every %v (appliance %v, %d scanners)", *interval, *appliance, len(scanners))
	return w.Run(ctx)
}

func parsePIDs(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("-protect: %q is not a pid", f)
		}
		out = append(out, pid)
	}
	return out, nil
}

// newBootMedium starts watching device, retrying for up to wait while it
// cannot be found yet (USB storage enumerates after init has started).
func newBootMedium(device, sysRoot string, wait time.Duration) (*scan.BootMedium, error) {
	deadline := time.Now().Add(wait)
	for {
		bm, err := scan.NewBootMedium(device, sysRoot)
		if err == nil || !time.Now().Before(deadline) {
			if err != nil && wait > 0 {
				err = fmt.Errorf("%w (waited %v)", err, wait)
			}
			return bm, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// selectScanners keeps the scanners named in list.
func selectScanners(all []scan.Scanner, list string) ([]scan.Scanner, error) {
	byName := map[string]scan.Scanner{}
	var names []string
	for _, s := range all {
		byName[s.Name()] = s
		names = append(names, s.Name())
	}
	var out []scan.Scanner
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		s, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("-scanners: unknown scanner %q (have %s)", n, strings.Join(names, ", "))
		}
		out = append(out, s)
	}
	return out, nil
}
