package kernelconfig

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
)

// kernelPath is the kernel under test: $KWYRE_KERNEL, or what build.sh made.
func kernelPath(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("boots QEMU: not in -short mode")
	}
	if p := os.Getenv("KWYRE_KERNEL"); p != "" {
		return p
	}
	p, err := filepath.Abs("../build/vmlinuz-kwyre")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("KWYRE_REQUIRE_KERNEL") != "" {
			t.Fatalf("no kernel at %s: run make kernel", p)
		}
		t.Skipf("no kernel at %s: run make kernel (or set KWYRE_REQUIRE_KERNEL=1 to fail)", p)
	}
	return p
}

// buildInit compiles testinit as a static binary.
func buildInit(t testing.TB, dir string) []byte {
	t.Helper()
	out := filepath.Join(dir, "init")
	cmd := exec.Command("go", "build", "-o", out, "./testinit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./testinit: %v\n%s", err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeInitramfs writes a zstd-compressed newc archive holding /init and
// /dev/console. Directories are written explicitly as 0755: u-root would
// create missing parents as 0777.
func writeInitramfs(path string, init []byte, modules map[string][]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, err := zstd.NewWriter(f)
	if err != nil {
		return fmt.Errorf("zstd writer: %w", err)
	}
	w := cpio.Newc.Writer(zw)
	records := []cpio.Record{
		cpio.Directory(".", 0o755),
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticRecord(init, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
	}
	if len(modules) > 0 {
		records = append(records, cpio.Directory("modules", 0o755))
		names := make([]string, 0, len(modules))
		for name := range modules {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			records = append(records, cpio.StaticRecord(modules[name],
				cpio.Info{Name: "modules/" + name, Mode: cpio.S_IFREG | 0o644}))
		}
	}
	for _, r := range records {
		if err := w.WriteRecord(cpio.MakeReproducible(r)); err != nil {
			return fmt.Errorf("cpio record %s: %w", r.Name, err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return fmt.Errorf("cpio trailer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("zstd close: %w", err)
	}
	return f.Close()
}

// boot runs QEMU (TCG) with a virtio network card attached and returns the
// serial console output once the guest powers off.
func boot(t testing.TB, kernel, initrd string, extra ...string) (string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{
		"-accel", "tcg", "-m", "512", "-display", "none",
		"-no-reboot", "-serial", "stdio",
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1",
		// A card for a driver to claim; restrict=on keeps it off the host's network.
		"-nic", "user,model=virtio-net-pci,restrict=on",
	}
	if len(extra) == 0 {
		args = append(args, "-nodefaults")
	}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", append(args, extra...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("QEMU did not power off within the deadline; console:\n%s", out.String())
	}
	if err != nil {
		t.Fatalf("qemu: %v; console:\n%s", err, out.String())
	}
	return out.String(), took
}

// parseReport collects the guest's "kwyre-boottest: key=value" lines.
func parseReport(console string) map[string]string {
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(console))
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		rest, ok := strings.CutPrefix(line, "kwyre-boottest: ")
		if !ok {
			continue
		}
		if k, v, ok := strings.Cut(rest, "="); ok {
			got[k] = v
		}
	}
	return got
}

// booted is the one QEMU boot the tests below share (each boot costs tens
// of seconds under TCG).
var booted struct {
	done    bool
	report  map[string]string
	console string
	modules string // why no modules were packed; "" when they were
}

func bootKernel(t *testing.T) {
	t.Helper()
	kernel := kernelPath(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed")
	}
	if booted.done {
		return
	}
	dir := t.TempDir()
	modules, why := buildModules(t, dir)
	initrd := filepath.Join(dir, "initramfs.cpio.zst")
	if err := writeInitramfs(initrd, buildInit(t, dir), modules); err != nil {
		t.Fatalf("initramfs: %v", err)
	}
	console, took := boot(t, kernel, initrd)
	t.Logf("boot to power-off under TCG: %v", took.Round(time.Millisecond))
	booted.done, booted.console, booted.report, booted.modules = true, console, parseReport(console), why
	if booted.report["done"] != "yes" {
		t.Fatalf("the guest init did not finish; console:\n%s", console)
	}
}

// buildModules builds testdata/hello against the kernel build tree and
// returns it signed with the build's key, unsigned, and signed with a key
// the kernel does not know. Without a build tree matching the kernel under
// test it returns no modules and the reason.
func buildModules(t *testing.T, dir string) (map[string][]byte, string) {
	t.Helper()
	if os.Getenv("KWYRE_KERNEL") != "" {
		return nil, "KWYRE_KERNEL names another kernel than the build tree's"
	}
	obj, err := filepath.Abs("../build/kernel-obj")
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(filepath.Dir(obj), "kernel-keys")
	signFile := filepath.Join(obj, "scripts", "sign-file")
	for _, p := range []string{filepath.Join(obj, "Module.symvers"), signFile, filepath.Join(keys, "signing_key.pem")} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Sprintf("no kernel build tree (%s missing)", p)
		}
	}
	src := filepath.Join(dir, "hello")
	if err := os.CopyFS(src, os.DirFS("testdata/hello")); err != nil {
		t.Fatalf("copy testdata/hello: %v", err)
	}
	run := func(name string, args ...string) {
		t.Helper()
		if msg, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, msg)
		}
	}
	run("make", "-s", "-C", obj, "ARCH=x86_64", "M="+src, "modules")
	ko := filepath.Join(src, "kwyre_hello.ko")
	other := filepath.Join(dir, "other.pem")
	run("openssl", "req", "-new", "-nodes", "-x509", "-newkey", "rsa:2048", "-batch",
		"-subj", "/CN=not the Kwyre build key", "-days", "1", "-keyout", other, "-out", other)
	signed, otherKey := filepath.Join(dir, "signed.ko"), filepath.Join(dir, "otherkey.ko")
	run(signFile, "sha512", filepath.Join(keys, "signing_key.pem"), filepath.Join(keys, "signing_key.x509"), ko, signed)
	run(signFile, "sha512", other, other, ko, otherKey)
	mods := map[string][]byte{}
	for name, path := range map[string]string{"1-signed.ko": signed, "2-unsigned.ko": ko, "3-otherkey.ko": otherKey} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		mods[name] = b
	}
	return mods, ""
}

func TestBootOnlyLoopback(t *testing.T) {
	bootKernel(t)
	got := booted.report
	for _, tc := range []struct {
		key, want, why string
	}{
		{"links", "lo", "the only network link is loopback"},
		{"virtio-net", "pci=virtio-pci,virtio=none", "a virtio network card is attached and no network driver claims it"},
		{"lockdown", "none integrity [confidentiality]", "lockdown in confidentiality mode"},
		{"memfd_secret", "ok", "memfd_secret works (SECRETMEM, secretmem.enable=1)"},
		{"netns", "ok", "network namespaces for the services"},
		{"userns", "EINVAL", "no user namespaces"},
		{"packet_socket", "EAFNOSUPPORT", "no packet sockets"},
		{"dev_mem", "no", "no /dev/mem"},
		{"proc_kcore", "no", "no /proc/kcore"},
		{"sysctl_ptrace_scope", "yes", "Yama's ptrace_scope, which init requires"},
		{"sysctl_suid_dumpable", "yes", "fs.suid_dumpable, which init requires"},
		{"config_netdevices", "n", "the running kernel says it has no network device support"},
		{"config_net", "y", "the running kernel keeps networking for loopback"},
	} {
		if got[tc.key] != tc.want {
			t.Errorf("%s: %s = %q, want %q", tc.why, tc.key, got[tc.key], tc.want)
		}
	}
	if r := got["release"]; !strings.HasSuffix(r, "-kwyre") {
		t.Errorf("release %q is not the Kwyre kernel", r)
	}
	if t.Failed() {
		t.Logf("console:\n%s", booted.console)
	}
}

// Only a module signed with the key the build generated may load.
func TestBootModuleSignatures(t *testing.T) {
	bootKernel(t)
	if booted.modules != "" {
		t.Skip(booted.modules)
	}
	for _, tc := range []struct{ key, want string }{
		{"module_1-signed", "ok"},
		{"module_2-unsigned", "EKEYREJECTED"},
		{"module_3-otherkey", "EKEYREJECTED"},
	} {
		if got := booted.report[tc.key]; got != tc.want {
			t.Errorf("%s = %q, want %q", tc.key, got, tc.want)
		}
	}
	if !strings.Contains(booted.console, "kwyre_hello: loaded") {
		t.Errorf("the signed module did not announce itself; console:\n%s", booted.console)
	}
}

// TestBootUEFI boots through OVMF on a q35 machine: the EFI stub, the EFI
// framebuffer with fbcon, and AHCI (q35's own controller) on the way.
func TestBootUEFI(t *testing.T) {
	kernel := kernelPath(t)
	const code = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	if _, err := os.Stat(code); err != nil {
		t.Skip("no OVMF: " + err.Error())
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed")
	}
	dir := t.TempDir()
	vars, err := os.ReadFile("/usr/share/OVMF/OVMF_VARS_4M.fd")
	if err != nil {
		t.Fatal(err)
	}
	varsCopy := filepath.Join(dir, "vars.fd")
	if err := os.WriteFile(varsCopy, vars, 0o600); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(dir, "initramfs.cpio.zst")
	if err := writeInitramfs(initrd, buildInit(t, dir), nil); err != nil {
		t.Fatalf("initramfs: %v", err)
	}
	console, took := boot(t, kernel, initrd, "-machine", "q35", "-vga", "std",
		"-drive", "if=pflash,format=raw,readonly=on,file="+code,
		"-drive", "if=pflash,format=raw,file="+varsCopy)
	t.Logf("UEFI boot to power-off under TCG: %v", took.Round(time.Millisecond))
	got := parseReport(console)
	if got["done"] != "yes" || got["links"] != "lo" {
		t.Errorf("done = %q, links = %q; want yes, lo", got["done"], got["links"])
	}
	for _, want := range []string{
		"EFI stub: Loaded initrd",
		"fb0: EFI VGA frame buffer device",
		"Console: switching to colour frame buffer device",
		"ahci",
	} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", console)
	}
}

func TestParseReport(t *testing.T) {
	for _, tc := range []struct {
		name, console string
		want          map[string]string
	}{
		{"crlf and noise", "[    0.1] boot\r\nkwyre-boottest: links=lo\r\nkwyre-boottest: done=yes\r\n", map[string]string{"links": "lo", "done": "yes"}},
		{"value with equals", "kwyre-boottest: error=mount a=b\n", map[string]string{"error": "mount a=b"}},
		{"no report", "Kernel panic - not syncing\n", map[string]string{}},
		{"malformed", "kwyre-boottest: novalue\n", map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseReport(tc.console)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// The archive must hold exactly ".", "dev", "dev/console" (char 5,1) and
// "init", with 0755 directories.
func TestInitramfsLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "i.cpio.zst")
	if err := writeInitramfs(path, []byte("#!/bin/true\n"), nil); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name  string
		mode  uint64
		major uint64
		minor uint64
	}{
		{".", cpio.S_IFDIR | 0o755, 0, 0},
		{"dev", cpio.S_IFDIR | 0o755, 0, 0},
		{"dev/console", cpio.S_IFCHR | 0o600, 5, 1},
		{"init", cpio.S_IFREG | 0o755, 0, 0},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d: %v", len(recs), len(want), recs)
	}
	for i, w := range want {
		r := recs[i]
		if r.Name != w.name || r.Mode != w.mode || r.Rmajor != w.major || r.Rminor != w.minor {
			t.Errorf("record %d = %s mode %o dev %d,%d; want %s mode %o dev %d,%d",
				i, r.Name, r.Mode, r.Rmajor, r.Rminor, w.name, w.mode, w.major, w.minor)
		}
	}
}

// BenchmarkBootToPowerOff boots the tiny test init (no modules) with this
// kernel and with Debian's (build/debian-kernel/vmlinuz), same initramfs,
// and reports the wall time from starting QEMU to the guest powering off.
func BenchmarkBootToPowerOff(b *testing.B) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		b.Skip("qemu-system-x86_64 is not installed")
	}
	dir := b.TempDir()
	initrd := filepath.Join(dir, "initramfs.cpio.zst")
	if err := writeInitramfs(initrd, buildInit(b, dir), nil); err != nil {
		b.Fatalf("initramfs: %v", err)
	}
	for _, k := range []struct{ name, path string }{
		{"kwyre", "../build/vmlinuz-kwyre"},
		{"debian", "../build/debian-kernel/vmlinuz"},
	} {
		b.Run(k.name, func(b *testing.B) {
			if _, err := os.Stat(k.path); err != nil {
				b.Skipf("no kernel at %s", k.path)
			}
			var total time.Duration
			for i := 0; i < b.N; i++ {
				console, took := boot(b, k.path, initrd)
				if parseReport(console)["done"] != "yes" {
					b.Fatalf("the guest init did not finish; console:\n%s", console)
				}
				total += took
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/boot")
		})
	}
}
