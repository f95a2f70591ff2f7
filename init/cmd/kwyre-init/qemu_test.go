package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/kwyre/kwyre/init/config"
	"github.com/kwyre/kwyre/init/manifest"
)

// The QEMU test boots kwyre-init as PID 1 on Debian's kernel (TCG, no
// network device) with test services, and checks the boot, the services'
// privileges, the power button, a tampered image and an intrusion report.
// It needs qemu-system-x86_64 and build/debian-kernel (tools/install-deps.sh);
// -short skips it.

const repoRoot = "../../.."

var kernelDir = filepath.Join(repoRoot, "build/debian-kernel")

// Modules the test loads: evdev gives /dev/input/event*, button the ACPI
// power button that QEMU's system_powerdown presses.
var testModules = []string{"kernel/drivers/input/evdev.ko", "kernel/drivers/acpi/button.ko"}

func skipUnlessQEMU(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("QEMU boot test skipped in -short mode")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	if _, err := os.Stat(filepath.Join(kernelDir, "vmlinuz")); err != nil {
		t.Skipf("no Debian kernel at %s", kernelDir)
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// buildBinaries builds kwyre-init and testsvc as static binaries, once.
func buildBinaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "kwyre-init-qemu-")
		if buildErr != nil {
			return
		}
		for _, b := range []struct{ out, pkg string }{
			{"init", "."},
			{"testsvc", "./testdata/testsvc"},
		} {
			cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(buildDir, b.out), b.pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

type scenario struct {
	reportAfter string                  // watchdog's -report-after
	crash       string                  // service that crashes 1 s after each start
	tamper      func(root string) error // after the manifest is written
	// modelDisk puts the model on a GPT disk (partition kwyre-model,
	// squashfs) attached as virtio-blk; buildInitramfs then returns the
	// disk image's path in disk.
	modelDisk bool
	disk      string
}

// Modules for the model partition, in dependency order (Debian's kernel
// has them as modules, and there is no modules.dep).
var diskModules = []string{
	"kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko",
	"kernel/drivers/virtio/virtio_pci_legacy_dev.ko", "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
	"kernel/drivers/virtio/virtio_pci.ko", "kernel/drivers/block/virtio_blk.ko", "kernel/fs/squashfs/squashfs.ko",
	// A network card too: init must keep its link down and report it.
	"kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko", "kernel/drivers/net/virtio_net.ko",
}

// buildInitramfs lays out the image in a folder, writes config and
// manifest, applies the scenario's tampering, and packs it as newc cpio.
func buildInitramfs(t *testing.T, sc *scenario) string {
	t.Helper()
	bins := buildBinaries(t)
	root := filepath.Join(t.TempDir(), "root")
	copyFile := func(src, dst string, mode os.FileMode) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, dst)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(filepath.Join(bins, "init"), "init", 0o755)
	copyFile(filepath.Join(bins, "testsvc"), "bin/testsvc", 0o755)
	var mods []string
	modList := testModules
	if sc.modelDisk {
		modList = append(append([]string(nil), diskModules...), testModules...)
		os.MkdirAll(filepath.Join(root, "model"), 0o755)
		if err := os.WriteFile(filepath.Join(root, "model/model.gguf"), bytes.Repeat([]byte("GGUF test model "), 1<<16), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range modList {
		dst := filepath.Join("lib/modules", filepath.Base(m))
		copyFile(filepath.Join(kernelDir, "modules", m), dst, 0o644)
		mods = append(mods, "/"+dst)
	}
	wdArgs := []string{"-name", "watchdog", "-show", "/run/kwyre/links.json"}
	if sc.reportAfter != "" {
		wdArgs = append(wdArgs, "-report-after", sc.reportAfter)
	}
	if sc.crash == "watchdog" {
		wdArgs = append(wdArgs, "-exit-after", "1s")
	}
	infArgs := []string{"-name", "inference", "-key", "/run/kwyre/inference/api-key"}
	if sc.crash == "inference" {
		infArgs = append(infArgs, "-exit-after", "1s")
	}
	cfg := &config.Config{
		Modules:  mods,
		Manifest: "/etc/kwyre/manifest",
		Services: []config.Service{
			{Name: "inference", Path: "/bin/testsvc", Args: infArgs,
				Env: []string{"KWYRE_ROLE=inference"}, UID: 801, GID: 801, NetNS: true, Restart: "backoff"},
			{Name: "watchdog", Path: "/bin/testsvc", Args: wdArgs, UID: 802, GID: 802,
				Caps: []string{"CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "CAP_KILL"}, Restart: "critical"},
			{Name: "console-serial", Path: "/bin/testsvc", Args: []string{"-name", "console", "-key", "/run/kwyre/console/api-key"},
				UID: 803, GID: 803, NetNS: true, Restart: "backoff"},
		},
	}
	if sc.modelDisk {
		cfg.ModelPartition, cfg.ModelFS = "kwyre-model", "squashfs"
	}
	var cb bytes.Buffer
	if err := cfg.Write(&cb); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "etc/kwyre"), 0o755)
	if err := os.WriteFile(filepath.Join(root, "etc/kwyre/config.json"), cb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var mb bytes.Buffer
	if err := manifest.Generate(root, &mb); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/kwyre/manifest"), mb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if sc.tamper != nil {
		if err := sc.tamper(root); err != nil {
			t.Fatal(err)
		}
	}
	if sc.modelDisk {
		// The model leaves the initramfs for its own partition; the
		// manifest, generated above, still lists it as model/model.gguf.
		sc.disk = buildModelDisk(t, filepath.Join(root, "model"))
		if err := os.RemoveAll(filepath.Join(root, "model")); err != nil {
			t.Fatal(err)
		}
	}

	out := filepath.Join(t.TempDir(), "initramfs.cpio")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	w := cpio.Newc.Writer(f)
	recs := []cpio.Record{cpio.Directory(".", 0o755), cpio.Directory("dev", 0o755), cpio.CharDev("dev/console", 0o600, 5, 1)}
	err = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if fi.IsDir() {
			recs = append(recs, cpio.Directory(rel, 0o755))
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		recs = append(recs, cpio.StaticFile(rel, string(b), uint64(fi.Mode().Perm())))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.WriteRecord(cpio.MakeReproducible(r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// vm is a running QEMU guest with its serial console on a pipe.
type vm struct {
	cmd     *exec.Cmd
	monitor string
	mu      sync.Mutex
	lines   []string
	done    chan error
}

func boot(t *testing.T, initramfs, disk string) *vm {
	t.Helper()
	mon := filepath.Join(t.TempDir(), "monitor.sock")
	args := []string{
		"-accel", "tcg", "-m", "512", "-smp", "1",
		"-display", "none", "-vga", "none", "-no-reboot",
		"-serial", "stdio", "-monitor", "unix:" + mon + ",server,nowait",
		"-kernel", filepath.Join(kernelDir, "vmlinuz"), "-initrd", initramfs,
		"-append", "console=ttyS0 panic=-1 kwyre.halt=poweroff loglevel=3",
	}
	if disk != "" {
		// With the disk comes a NIC that the guest cannot use for anything:
		// restrict=on gives it no route out of QEMU.
		args = append(args, "-drive", "file="+disk+",if=virtio,format=raw,readonly=on")
		args = append(args, "-nic", "user,model=virtio-net-pci,restrict=on")
	} else {
		args = append(args, "-nic", "none")
	}
	cmd := exec.Command("qemu-system-x86_64", args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	v := &vm{cmd: cmd, monitor: mon, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := strings.TrimRight(sc.Text(), "\r")
			v.mu.Lock()
			v.lines = append(v.lines, l)
			v.mu.Unlock()
		}
		v.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if t.Failed() || testing.Verbose() {
			t.Logf("serial console:\n%s", v.output())
		}
	})
	return v
}

func (v *vm) output() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return strings.Join(v.lines, "\n")
}

// waitLine waits until a console line matches re and returns it.
func (v *vm) waitLine(t *testing.T, re string, timeout time.Duration) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for {
		v.mu.Lock()
		for _, l := range v.lines {
			if rx.MatchString(l) {
				v.mu.Unlock()
				return l
			}
		}
		v.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no console line matching %q within %s", re, timeout)
		}
		select {
		case <-v.done:
			v.done <- nil
			// QEMU ended: one last look at the lines.
			v.mu.Lock()
			for _, l := range v.lines {
				if rx.MatchString(l) {
					v.mu.Unlock()
					return l
				}
			}
			v.mu.Unlock()
			t.Fatalf("QEMU exited without a console line matching %q", re)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (v *vm) waitExit(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-v.done:
		v.done <- nil
	case <-time.After(timeout):
		t.Fatalf("QEMU did not power off within %s", timeout)
	}
}

func (v *vm) monitorCmd(t *testing.T, cmd string) {
	t.Helper()
	c, err := net.Dial("unix", v.monitor)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "%s\n", cmd)
	time.Sleep(200 * time.Millisecond)
}

const bootTimeout = 3 * time.Minute

func TestQEMUBootAndPowerButton(t *testing.T) {
	skipUnlessQEMU(t)
	v := boot(t, buildInitramfs(t, &scenario{}), "")
	v.waitLine(t, `^kwyre-init: appliance ready`, bootTimeout)
	for _, re := range []string{
		`^kwyre-init: \[ok\] mount filesystems \(`,
		`^kwyre-init: \[ok\] harden kernel \(`,
		`^kwyre-init: \[ok\] network: loopback only \(`,
		`^kwyre-init: \[ok\] load kernel modules \(.*\): 2 loaded`,
		`^kwyre-init: \[ok\] verify manifest \(.*\): 5 files`,
		`^kwyre-init: \[ok\] start services \(.*\): console-serial \(pid \d+\), inference \(pid \d+\), watchdog \(pid \d+\)`,
		`^kwyre-init: \[ok\] links \(.*\): root namespace: lo up; services' namespace: lo up$`,
	} {
		v.waitLine(t, re, 10*time.Second)
	}
	checks := []struct{ name, re string }{
		{"inference", `uid=801,801,801,801 gid=801,801,801,801 groups=\[\] nnp=1 capeff=0000000000000000 capamb=0000000000000000 capbnd=0000000000000000 netdevs=lo key=ok\(64\) env=KWYRE_ROLE=inference,PATH=/bin$`},
		{"console", `uid=803,.* nnp=1 capeff=0000000000000000 .* netdevs=lo key=ok\(64\) env=PATH=/bin$`},
		{"watchdog", `uid=802,.* nnp=1 capeff=0000000000080024 capamb=0000000000080024 capbnd=0000000000080024 .*key=none env=KWYRE_REPORT_FD=3,PATH=/bin$`},
	}
	for _, c := range checks {
		v.waitLine(t, `testsvc `+c.name+`: `+c.re, 10*time.Second)
	}
	v.monitorCmd(t, "system_powerdown")
	v.waitLine(t, `^kwyre-init: shutting down: power button: `, time.Minute)
	v.waitLine(t, `^inference: testsvc inference: SIGTERM`, 30*time.Second)
	v.waitLine(t, `^kwyre-init: services stopped in .*; powering off`, 30*time.Second)
	v.waitExit(t, time.Minute)
}

func TestQEMUTamperedImageHalts(t *testing.T) {
	skipUnlessQEMU(t)
	v := boot(t, buildInitramfs(t, &scenario{tamper: func(root string) error {
		// An extra executable and a changed service binary.
		if err := os.WriteFile(filepath.Join(root, "bin/sh"), []byte("#!/bin/false\n"), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(root, "bin/testsvc"), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteAt([]byte{0}, 1000)
		return err
	}}), "")
	v.waitLine(t, `^kwyre-init: \[FAIL\] verify manifest \(.*\): files differ from the manifest: 2 difference`, bootTimeout)
	v.waitLine(t, `^kwyre-init:   changed: bin/testsvc: expected sha256 [0-9a-f]{64}, found [0-9a-f]{64}`, 5*time.Second)
	v.waitLine(t, `^kwyre-init:   extra executable: bin/sh`, 5*time.Second)
	v.waitLine(t, `^kwyre-init: no service was started`, 5*time.Second)
	v.waitExit(t, time.Minute)
	if strings.Contains(v.output(), ": testsvc ") {
		t.Error("a service ran after a failed manifest check")
	}
}

func TestQEMUIntrusionPowersOff(t *testing.T) {
	skipUnlessQEMU(t)
	v := boot(t, buildInitramfs(t, &scenario{reportAfter: "2s"}), "")
	v.waitLine(t, `^kwyre-init: appliance ready`, bootTimeout)
	v.waitLine(t, `^kwyre-init: \[intrusion\] test: simulated intrusion`, time.Minute)
	v.waitLine(t, `^kwyre-init: shutting down: intrusion confirmed by the watchdog: test: simulated intrusion`, 10*time.Second)
	v.waitLine(t, `^inference: testsvc inference: SIGTERM`, 30*time.Second)
	v.waitExit(t, time.Minute)
}

// buildModelDisk packs dir as squashfs into partition 1 (GPT name
// kwyre-model) of a disk image.
func buildModelDisk(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("mksquashfs not installed")
	}
	tmp := t.TempDir()
	sq := filepath.Join(tmp, "model.squashfs")
	if out, err := exec.Command("mksquashfs", dir, sq, "-noappend", "-quiet", "-comp", "gzip").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, out)
	}
	fi, err := os.Stat(sq)
	if err != nil {
		t.Fatal(err)
	}
	sectors := uint64(fi.Size()+511) / 512
	disk := filepath.Join(tmp, "disk.img")
	d, err := diskfs.Create(disk, int64(2048+sectors+2048)*512, diskfs.SectorSize512)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Partition(&gpt.Table{
		LogicalSectorSize: 512, PhysicalSectorSize: 512, ProtectiveMBR: true,
		Partitions: []*gpt.Partition{{Index: 1, Start: 2048, End: 2048 + sectors - 1, Type: gpt.LinuxFilesystem, Name: "kwyre-model"}},
	}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(sq)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := d.WritePartitionContents(1, f); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	return disk
}

func TestQEMUModelPartition(t *testing.T) {
	skipUnlessQEMU(t)
	sc := &scenario{modelDisk: true}
	v := boot(t, buildInitramfs(t, sc), sc.disk)
	v.waitLine(t, `^kwyre-init: appliance ready`, bootTimeout)
	v.waitLine(t, `^kwyre-init: \[ok\] load kernel modules \(.*\): 12 loaded`, 5*time.Second)
	v.waitLine(t, `^kwyre-init: \[link\] eth0 appeared; kept down`, 5*time.Second)
	v.waitLine(t, `^kwyre-init: \[ok\] links \(.*\): root namespace: lo up, eth0 down; services' namespace: lo up$`, 5*time.Second)
	v.waitLine(t, `^watchdog: testsvc watchdog: /run/kwyre/links.json: \[\{"name":"eth0","at":"[0-9T:.Z-]+"\}\] \(<nil>\)`, time.Minute)
	v.waitLine(t, `^kwyre-init: \[ok\] mount model partition \(.*\): /dev/vda1 \(squashfs\) read-only at /model`, 5*time.Second)
	v.waitLine(t, `^kwyre-init: \[ok\] verify manifest \(.*\): 16 files`, 5*time.Second)
	v.monitorCmd(t, "system_powerdown")
	v.waitExit(t, time.Minute)
}

func TestQEMUCtrlAltDel(t *testing.T) {
	skipUnlessQEMU(t)
	v := boot(t, buildInitramfs(t, &scenario{}), "")
	v.waitLine(t, `^kwyre-init: appliance ready`, bootTimeout)
	v.waitLine(t, `^inference: testsvc inference: `, time.Minute) // its SIGTERM handler is in place
	v.monitorCmd(t, "sendkey ctrl-alt-delete")
	v.waitLine(t, `^kwyre-init: shutting down: Ctrl-Alt-Del \(SIGINT\)`, time.Minute)
	v.waitLine(t, `^inference: testsvc inference: SIGTERM`, 30*time.Second)
	v.waitExit(t, time.Minute)
}

func TestQEMUCrashLoopHalts(t *testing.T) {
	skipUnlessQEMU(t)
	v := boot(t, buildInitramfs(t, &scenario{crash: "inference"}), "")
	v.waitLine(t, `^kwyre-init: appliance ready`, bootTimeout)
	v.waitLine(t, `^kwyre-init: restarting inference in 8s`, 2*time.Minute)
	v.waitLine(t, `^kwyre-init: crash loop: service inference failed 5 times within 2m0s \(last: exit status 3\)`, 2*time.Minute)
	v.waitLine(t, `^kwyre-init: stopped: crash loop`, 30*time.Second)
	v.waitLine(t, `^kwyre-init: all services are stopped; the system is halted`, 30*time.Second)
	v.waitExit(t, time.Minute)
	if strings.Contains(v.output(), "restarting inference in 16s") {
		t.Error("a fifth restart was attempted")
	}
}

func TestQEMUCriticalWatchdogLossPowersOff(t *testing.T) {
	skipUnlessQEMU(t)
	v := boot(t, buildInitramfs(t, &scenario{crash: "watchdog"}), "")
	v.waitLine(t, `^kwyre-init: appliance ready`, bootTimeout)
	v.waitLine(t, `^kwyre-init: critical service watchdog died again \(exit status 3\): no second restart`, time.Minute)
	v.waitLine(t, `^kwyre-init: shutting down: critical service watchdog died again`, 10*time.Second)
	v.waitExit(t, time.Minute)
}
