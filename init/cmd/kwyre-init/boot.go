package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/kwyre/kwyre/init/config"
	"github.com/kwyre/kwyre/init/gpudev"
	"github.com/kwyre/kwyre/init/manifest"
	"github.com/kwyre/kwyre/init/modules"
	"github.com/kwyre/kwyre/init/mounts"
	"github.com/kwyre/kwyre/init/netguard"
	"github.com/kwyre/kwyre/init/reaper"
	"github.com/kwyre/kwyre/init/runstate"
	"github.com/kwyre/kwyre/init/shutdown"
	"github.com/kwyre/kwyre/init/steps"
	"github.com/kwyre/kwyre/init/supervisor"
	"github.com/kwyre/kwyre/init/sysctl"
)

// bootSteps are init's steps, in order (DESIGN.md, "The boot path").
func (a *appliance) bootSteps() []steps.Step {
	return []steps.Step{
		{Name: "mount filesystems", Run: a.mountFilesystems},
		{Name: "harden kernel", Run: a.hardenKernel},
		{Name: "read config", Run: a.readConfig},
		{Name: "network: loopback only", Run: a.loopbackOnly},
		{Name: "load kernel modules", Run: a.loadModules},
		{Name: "GPU device nodes", Run: a.gpuNodes},
		{Name: "mount model partition", Run: a.mountModel},
		{Name: "lock kernel modules", Run: a.lockModules},
		{Name: "verify manifest", Run: a.verifyManifest},
		{Name: "write api keys", Run: a.writeKeys},
		{Name: "start services", Run: a.startServices},
		{Name: "links", Run: a.checkLinks},
	}
}

func (a *appliance) mountFilesystems() (string, error) {
	res, err := mounts.MountAll("/", mounts.Base)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(runstate.Dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", runstate.Dir, err)
	}
	// The power button works from here on, even if a later step fails.
	a.watchButtons()
	var skipped []string
	for _, r := range res {
		if r.Skipped {
			skipped = append(skipped, r.Target)
		}
	}
	if len(skipped) > 0 {
		return "already mounted: " + strings.Join(skipped, " "), nil
	}
	return "", nil
}

func (a *appliance) hardenKernel() (string, error) {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return "", fmt.Errorf("RLIMIT_CORE 0: %w", err)
	}
	out, err := sysctl.Apply(procSys, sysctl.Hardening)
	if err != nil {
		return "", err
	}
	if err := shutdown.DisableCtrlAltDel(); err != nil {
		return "", err
	}
	if m := sysctl.Missing(out); len(m) > 0 {
		return "not in this kernel (feature absent): " + strings.Join(m, " "), nil
	}
	return "", nil
}

func (a *appliance) readConfig() (string, error) {
	c, err := config.Load(configPath)
	if err != nil {
		return "", err
	}
	a.cfg = c
	return fmt.Sprintf("%d services, %d modules", len(c.Services), len(c.Modules)), nil
}

func (a *appliance) loopbackOnly() (string, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return "", fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	note, err := netguard.SetupLoopback(h)
	if err != nil {
		return "", err
	}
	links, err := runstate.NewLinkLog(filepath.Join(runstate.Dir, runstate.Links))
	if err != nil {
		return "", err
	}
	a.links = links
	// The guard's first look (below) reports every link, these included,
	// on the console and in links.json.
	downed, err := netguard.DownOthers(h)
	if err != nil {
		return "", err
	}
	if err := netguard.Watch(a.ctx, netns.None(), a.linkForced("")); err != nil {
		return "", err
	}
	fd, nsNote, err := netguard.NewNamespace()
	if err != nil {
		return "", err
	}
	a.netnsFD = fd
	if err := netguard.Watch(a.ctx, netns.NsHandle(fd), a.linkForced("services' namespace: ")); err != nil {
		return "", err
	}
	var notes []string
	if len(downed) > 0 {
		notes = append(notes, "forced down: "+strings.Join(downed, " "))
	}
	for _, n := range []string{note, nsNote} {
		if n != "" {
			notes = append(notes, n)
		}
	}
	return strings.Join(notes, "; "), nil
}

// linkForced reports a link the guard set down: one console line and an
// entry in links.json.
func (a *appliance) linkForced(where string) func(netguard.Forced) {
	return func(f netguard.Forced) {
		if f.Err != nil {
			fmt.Fprintf(a.out, "kwyre-init: [link] %s%s: %v\n", where, f.Name, f.Err)
			return
		}
		if f.WasUp {
			fmt.Fprintf(a.out, "kwyre-init: [link] %s%s came up; forced down\n", where, f.Name)
		} else {
			fmt.Fprintf(a.out, "kwyre-init: [link] %s%s appeared; kept down\n", where, f.Name)
		}
		if err := a.links.Add(runstate.LinkEvent{Name: f.Name, At: f.At.UTC()}); err != nil {
			fmt.Fprintf(a.out, "kwyre-init: %v\n", err)
		}
	}
}

// checkLinks lists the links the kernel reports, once the modules (and
// with them any NIC) are loaded and the services run: on the console, the
// proof that only lo is up. A link the guard cannot hold down fails the
// boot (the services are stopped).
func (a *appliance) checkLinks() (string, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return "", fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	root, err := netguard.CheckLoopbackOnly(h, linkTries, linkWait)
	if err != nil {
		return "", fmt.Errorf("root namespace: %w", err)
	}
	note := "root namespace: " + netguard.Describe(root)
	if a.netnsFD < 0 {
		return note, nil
	}
	sh, err := netlink.NewHandleAt(netns.NsHandle(a.netnsFD), unix.NETLINK_ROUTE)
	if err != nil {
		return "", fmt.Errorf("netlink in the services' namespace: %w", err)
	}
	defer sh.Close()
	svc, err := netguard.CheckLoopbackOnly(sh, linkTries, linkWait)
	if err != nil {
		return "", fmt.Errorf("services' namespace: %w", err)
	}
	return note + "; services' namespace: " + netguard.Describe(svc), nil
}

func (a *appliance) loadModules() (string, error) {
	if len(a.cfg.Modules) == 0 {
		return "none listed", nil
	}
	// Check the module files against the manifest before the kernel runs
	// them; the full verification follows once the model is mounted.
	entries, err := a.readManifest()
	if err != nil {
		return "", err
	}
	if diffs := manifest.Check("/", entries, a.cfg.Modules); len(diffs) > 0 {
		a.printDifferences(diffs)
		return "", fmt.Errorf("%d module file(s) differ from the manifest", len(diffs))
	}
	out, err := modules.Load(a.cfg.Modules)
	if err != nil {
		return "", err
	}
	var loaded, already, skipped int
	var notes []string
	for _, o := range out {
		switch {
		case o.Already:
			already++
		case o.Skipped != nil:
			skipped++
			notes = append(notes, fmt.Sprintf("%s: %v", o.Name, o.Skipped))
		default:
			loaded++
		}
	}
	note := fmt.Sprintf("%d loaded, %d already there", loaded, already)
	if skipped > 0 {
		note += fmt.Sprintf(", %d without their device (%s)", skipped, strings.Join(notes, "; "))
	}
	return note, nil
}

// gpuNodes makes /dev/nvidia* for the inference service's group only.
func (a *appliance) gpuNodes() (string, error) {
	nodes, err := gpudev.Plan("/proc")
	if errors.Is(err, gpudev.ErrNoDriver) {
		return "no NVIDIA driver", nil
	}
	if err != nil {
		return "", err
	}
	inf := a.cfg.Service("inference")
	if inf == nil {
		return "no inference service: nodes not created", nil
	}
	if err := gpudev.Create("/dev", nodes, inf.GID); err != nil {
		return "", err
	}
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.Name
	}
	return fmt.Sprintf("%s (group %d, 0660)", strings.Join(names, " "), inf.GID), nil
}

func (a *appliance) mountModel() (string, error) {
	if a.cfg.ModelPartition == "" {
		return "model is in the initramfs", nil
	}
	dev, err := mounts.WaitPartition(sysRoot, a.cfg.ModelPartition, partitionWait)
	if err != nil {
		return "", err
	}
	if err := mounts.MountModel(dev, modelDir, a.cfg.ModelFS); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s (%s) read-only at %s", dev, a.cfg.ModelFS, modelDir), nil
}

func (a *appliance) lockModules() (string, error) {
	out, err := sysctl.Apply(procSys, sysctl.LockModules)
	if err != nil {
		return "", err
	}
	if len(sysctl.Missing(out)) > 0 {
		return "kernel without module support", nil
	}
	return "", nil
}

func (a *appliance) readManifest() ([]manifest.Entry, error) {
	f, err := os.Open(a.cfg.Manifest)
	if err != nil {
		return nil, fmt.Errorf("open manifest: %w", err)
	}
	defer f.Close()
	entries, _, err := manifest.Parse(f)
	return entries, err
}

func (a *appliance) verifyManifest() (string, error) {
	f, err := os.Open(a.cfg.Manifest)
	if err != nil {
		return "", fmt.Errorf("open manifest: %w", err)
	}
	defer f.Close()
	res, err := manifest.Verify("/", f)
	if errors.Is(err, manifest.ErrMismatch) {
		a.printDifferences(res.Differences)
		return "", err
	}
	if err != nil {
		return "", err
	}
	if err := runstate.WriteJSON(filepath.Join(runstate.Dir, runstate.Integrity), res.Summary()); err != nil {
		return "", err
	}
	mb := float64(res.Bytes) / 1e6
	rate := mb / max(res.Duration.Seconds(), 1e-9)
	return fmt.Sprintf("%d files, %.1f MB, %.0f MB/s", res.Files, mb, rate), nil
}

func (a *appliance) printDifferences(diffs []manifest.Difference) {
	for _, d := range diffs {
		fmt.Fprintf(a.out, "kwyre-init:   %s\n", d)
	}
}

// writeKeys writes the API key for the inference service and the consoles,
// and the folder the watchdog writes its state to.
func (a *appliance) writeKeys() (string, error) {
	var owners []runstate.KeyOwner
	if s := a.cfg.Service("inference"); s != nil {
		owners = append(owners, runstate.KeyOwner{Dir: filepath.Join(runstate.Dir, "inference"), UID: s.UID, GID: s.GID})
	}
	if s := firstService(a.cfg, "console"); s != nil {
		owners = append(owners, runstate.KeyOwner{Dir: filepath.Join(runstate.Dir, "console"), UID: s.UID, GID: s.GID})
	}
	if err := runstate.WriteAPIKeys(owners); err != nil {
		return "", err
	}
	if s := a.cfg.Service("watchdog"); s != nil {
		if err := mkdirOwned(filepath.Join(runstate.Dir, "watchdog"), 0o755, s.UID, s.GID); err != nil {
			return "", err
		}
	}
	names := make([]string, len(owners))
	for i, o := range owners {
		names[i] = filepath.Base(o.Dir)
	}
	return "for " + strings.Join(names, ", "), nil
}

// firstService returns the first service whose name starts with prefix
// (console-tty1, console-serial: they run as one user).
func firstService(c *config.Config, prefix string) *config.Service {
	for i := range c.Services {
		if strings.HasPrefix(c.Services[i].Name, prefix) {
			return &c.Services[i]
		}
	}
	return nil
}

func (a *appliance) startServices() (string, error) {
	r := reaper.New()
	r.OnOrphan = func(e reaper.Exit) {
		fmt.Fprintf(a.out, "kwyre-init: reaped orphan pid %d: %v\n", e.Pid, e)
	}
	go r.Run(a.ctx)

	pr, pw, err := os.Pipe()
	if err != nil {
		return "", fmt.Errorf("watchdog report pipe: %w", err)
	}
	a.reportR, a.reportW = pr, pw
	go func() {
		err := shutdown.ReadReports(pr, func(f shutdown.Finding) {
			fmt.Fprintf(a.out, "kwyre-init: [intrusion] %s\n", f)
			a.request(a.trig, "intrusion confirmed by the watchdog: "+f.String())
		})
		if err != nil {
			a.request(a.trig, err.Error())
		}
	}()

	quiet := chatOnConsole(a.cfg) && !cmdlineHas("kwyre.verbose")
	if quiet {
		fmt.Fprintf(a.out, "kwyre-init: services' INFO lines stay in RAM: the chat shares this console (kwyre.verbose on the kernel command line shows them)\n")
	}
	sup, err := supervisor.New(supervisor.Options{
		Reaper:       r,
		NetNS:        a.netnsFD,
		Console:      a.out,
		Ring:         a.ring,
		QuietConsole: quiet,
		StateFile:    filepath.Join(runstate.Dir, runstate.Supervised),
		OnFatal: func(why string, critical bool) {
			if critical {
				a.request(a.trig, why) // fail closed: power off now
			} else {
				a.request(a.haltReq, why) // stop everything, keep the reason on screen
			}
		},
	})
	if err != nil {
		return "", err
	}
	a.sup = sup
	var children []supervisor.Child
	for _, s := range a.cfg.Services {
		c := supervisor.Child{Service: s}
		if s.Name == "watchdog" {
			c.ExtraEnv = []string{"KWYRE_REPORT_FD=3"}
			c.ExtraFiles = []*os.File{pw}
		}
		children = append(children, c)
	}
	if err := sup.Start(children); err != nil {
		return "", err
	}
	pids := sup.Pids()
	names := make([]string, 0, len(pids))
	for n := range pids {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		names[i] = fmt.Sprintf("%s (pid %d)", n, pids[n])
	}
	return strings.Join(names, ", "), nil
}
