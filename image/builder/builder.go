// Package builder turns the built programs, a kernel and a GGUF model into
// the appliance's boot artefacts: initramfs.cpio.zst, the kwyre.efi UKI and
// the kwyre.img GPT disk. The same inputs give byte-identical outputs.
package builder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kwyre/kwyre/image/disk"
	"github.com/kwyre/kwyre/image/initramfs"
	"github.com/kwyre/kwyre/image/kernel"
	"github.com/kwyre/kwyre/image/kmod"
	"github.com/kwyre/kwyre/image/rootfs"
	"github.com/kwyre/kwyre/image/uki"
	"github.com/kwyre/kwyre/init/config"
	"github.com/kwyre/kwyre/init/manifest"
)

// BaseCmdline is the kernel command line every image carries: consoles on
// the screen and the serial port (the last one is /dev/console), memory
// hardening, lockdown, and reboot-on-panic so a failed boot ends.
const BaseCmdline = "console=tty0 console=ttyS0,115200 init_on_free=1 init_on_alloc=1 slab_nomerge " +
	"page_alloc.shuffle=1 lockdown=confidentiality vsyscall=none quiet panic=-1"

// Programs go to /bin except init, which is /init.
var Programs = []string{"kwyre-init", "kwyre-inference", "kwyre-watchdog", "kwyre-console"}

// OptionalPrograms go to /bin when the build made them: the inference
// service's x86-64-v3 build, which the baseline one execs on CPUs with AVX2.
var OptionalPrograms = []string{"kwyre-inference-x86-64-v3"}

// BaseModules are loaded on every boot: the ACPI power button and the event
// interface init reads it from, and USB keyboards for the kiosk.
var BaseModules = []string{"button", "evdev", "xhci_pci", "usbhid", "hid_generic"}

// StorageModules are loaded when the model is on its own partition: the
// disk controllers a laptop or QEMU may boot from (USB sticks included).
var StorageModules = []string{"virtio_pci", "virtio_blk", "nvme", "ahci", "sd_mod", "usb_storage", "uas"}

// Partition modes.
const (
	PartitionAuto   = "auto"
	PartitionAlways = "always"
	PartitionNever  = "never"
)

// Options are the builder's inputs.
type Options struct {
	Bin            string   // folder holding the programs
	Kernel         string   // bzImage; its release is read from its setup header
	ModulesDir     string   // the kernel's lib/modules/RELEASE; "" = none (the kernel has every driver built in)
	ModuleCert     string   // certificate every module in the image must be signed with; "" = not checked
	Stub           string   // systemd EFI stub
	Model          string   // GGUF file; "" = generate the demo model
	ModelPartition string   // auto | always | never
	ModelFS        string   // erofs | squashfs
	Threshold      int64    // auto: models larger than this go to a partition
	Cmdline        string   // appended to BaseCmdline
	ExtraModules   []string // loaded after the others (tests: virtio_net)
	GPU            GPU      // the CUDA backend and NVIDIA driver; GPU.Dir "" = CPU-only image
	Tamper         []string // "path[@offset]": flip a byte after the manifest is made (tests only)
	Version        string   // .osrel VERSION_ID
	Out            string   // output folder
	Keep           bool     // keep the staging tree and intermediate files
	Log            io.Writer
}

// Result describes what was built.
type Result struct {
	Initramfs, EFI, Image  string
	InitramfsSize, EFISize int64
	ImageSize, ModelSize   int64
	ImageSHA256            string
	ModelOnPartition       bool
	KernelRelease          string
	WatchesBootMedium      bool // the watchdog powers off when the boot disk goes
	Modules                []string
	GPULibraries           int    // files under BackendDir plus the libraries staged for them
	GPUDriver              string // NVIDIA driver release ("" when unknown or CPU-only)
	ManifestFiles          int
	Seconds                float64
}

// Build runs every stage.
func Build(o Options) (*Result, error) {
	start := time.Now()
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.ModelFS == "" {
		o.ModelFS = "erofs"
	}
	if o.ModelPartition == "" {
		o.ModelPartition = PartitionAuto
	}
	if o.Stub == "" {
		o.Stub = uki.DefaultStub
	}
	if o.Threshold == 0 {
		o.Threshold = 256 << 20
	}
	step := 0
	stage := func(format string, args ...any) {
		step++
		fmt.Fprintf(o.Log, "kwyre-image: [%d/8] %s\n", step, fmt.Sprintf(format, args...))
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	work := filepath.Join(o.Out, "work")
	if err := os.RemoveAll(work); err != nil {
		return nil, fmt.Errorf("clear %s: %w", work, err)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("work folder: %w", err)
	}
	if !o.Keep {
		defer os.RemoveAll(work)
	}
	res := &Result{
		Initramfs: filepath.Join(o.Out, "initramfs.cpio.zst"),
		EFI:       filepath.Join(o.Out, "kwyre.efi"),
		Image:     filepath.Join(o.Out, "kwyre.img"),
	}

	// 1. The model.
	if o.Model == "" {
		o.Model = filepath.Join(o.Out, "demo.gguf")
		stage("model: generating the demo model into %s", o.Model)
		if err := WriteDemoModel(o.Model); err != nil {
			return nil, err
		}
	} else {
		stage("model: %s", o.Model)
	}
	st, err := os.Stat(o.Model)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("model %s: not a regular file", o.Model)
	}
	res.ModelSize = st.Size()
	switch o.ModelPartition {
	case PartitionAuto:
		res.ModelOnPartition = st.Size() > o.Threshold
	case PartitionAlways:
		res.ModelOnPartition = true
	case PartitionNever:
	default:
		return nil, fmt.Errorf("-model-partition %q: want auto, always or never", o.ModelPartition)
	}

	// 2. Programs and their shared libraries.
	tree, err := rootfs.New(filepath.Join(work, "rootfs"))
	if err != nil {
		return nil, err
	}
	var bins []string
	for _, p := range Programs {
		src := filepath.Join(o.Bin, p)
		if _, err := os.Stat(src); err != nil {
			return nil, fmt.Errorf("program %s: %w (run make build)", p, err)
		}
		dst := "/bin/" + p
		if p == "kwyre-init" {
			dst = "/init"
		}
		if err := tree.CopyFile(src, dst, 0o755); err != nil {
			return nil, err
		}
		bins = append(bins, src)
	}
	for _, p := range OptionalPrograms {
		src := filepath.Join(o.Bin, p)
		if _, err := os.Stat(src); err != nil {
			continue
		}
		if err := tree.CopyFile(src, "/bin/"+p, 0o755); err != nil {
			return nil, err
		}
		bins = append(bins, src)
	}
	libs, err := tree.AddLibraries(bins...)
	if err != nil {
		return nil, err
	}
	var gpu *gpuStaged
	if o.GPU.Dir != "" {
		if gpu, err = stageGPU(tree, o.GPU); err != nil {
			return nil, err
		}
		res.GPULibraries = len(gpu.Backend) + len(gpu.Libs)
		res.GPUDriver = gpu.DriverVersion
		stage("programs: %d, shared libraries: %d paths; GPU: backend %s (%d files), %d libraries, driver %s",
			len(bins), len(libs), BackendDir, len(gpu.Backend), len(gpu.Libs), orUnknown(gpu.DriverVersion))
	} else {
		stage("programs: %d, shared libraries: %d paths", len(bins), len(libs))
	}

	// 3. Kernel and modules.
	kimg, err := kernel.Open(o.Kernel)
	if err != nil {
		return nil, err
	}
	version := kimg.Release
	res.KernelRelease = version
	want := append([]string(nil), BaseModules...)
	if res.ModelOnPartition {
		want = append(want, StorageModules...)
		want = append(want, o.ModelFS)
	}
	var mods []kmod.Module
	// The watchdog watches the boot medium when the kernel will see the boot
	// disk: with the storage drivers loaded (model partition) or built in.
	// Without them it could not find the disk, and would fail closed.
	res.WatchesBootMedium = res.ModelOnPartition
	if o.ModulesDir == "" {
		// No module tree: the kernel must have what the image needs built
		// in. Nothing can be checked, so nothing optional is accepted.
		switch {
		case gpu != nil:
			return nil, fmt.Errorf("a GPU image needs the NVIDIA modules: give -modules, the kernel %s's module tree that holds them", version)
		case len(o.ExtraModules) > 0:
			return nil, fmt.Errorf("-extra-modules %s: no module tree (-modules) to take them from", strings.Join(o.ExtraModules, ","))
		}
		stage("kernel %s: no module tree, no modules loaded (%s must be built in)", version, strings.Join(want, " "))
	} else {
		mt, err := kmod.Open(o.ModulesDir)
		if err != nil {
			return nil, err
		}
		if err := checkTreeRelease(o.ModulesDir, version); err != nil {
			return nil, err
		}
		if gpu != nil {
			if err := checkNvidiaModules(mt, version, o.GPU, gpu.DriverVersion); err != nil {
				return nil, err
			}
			want = append(want, NvidiaModules...)
		}
		want = append(want, o.ExtraModules...)
		if mods, err = mt.Resolve(want); err != nil {
			return nil, err
		}
		if err := checkSigner(kimg, o.ModuleCert, o.ModulesDir, mods); err != nil {
			return nil, err
		}
		modRoot := "/lib/modules/" + version + "/"
		for _, m := range mods {
			if err := tree.CopyFile(filepath.Join(o.ModulesDir, m.Path), modRoot+m.Path, 0o644); err != nil {
				return nil, err
			}
			res.Modules = append(res.Modules, modRoot+m.Path)
		}
		if allBuiltin(mt, StorageModules) {
			res.WatchesBootMedium = true
		}
		var builtin []string
		for _, w := range want {
			if mt.Builtin(w) {
				builtin = append(builtin, kmod.Canonical(w))
			}
		}
		loaded := "no modules to load"
		if len(mods) > 0 {
			loaded = fmt.Sprintf("%d modules (%s)", len(mods), moduleNames(mods))
		}
		stage("kernel %s: %s; built in: %s", version, loaded, orNone(strings.Join(builtin, " ")))
	}

	// 4. Model, config, manifest.
	if err := tree.LinkFile(o.Model, ModelPath, 0o644); err != nil {
		return nil, err
	}
	cfg := config.Config{
		Modules:  res.Modules,
		Manifest: ManifestPath,
		Services: Services(),
	}
	if gpu != nil {
		inf := cfg.Service("inference")
		inf.Args = append(inf.Args, "-backend-dir", BackendDir)
		inf.Env = append(inf.Env, "LD_LIBRARY_PATH="+gpu.LibraryPath)
	}
	if res.WatchesBootMedium {
		wd := cfg.Service("watchdog")
		wd.Args = append(wd.Args, "-boot-device", BootDevice, "-boot-device-wait", BootDeviceWait)
	}
	if res.ModelOnPartition {
		cfg.ModelPartition = disk.ModelPartitionName
		cfg.ModelFS = o.ModelFS
	}
	var cfgBuf bytes.Buffer
	if err := cfg.Write(&cfgBuf); err != nil {
		return nil, fmt.Errorf("appliance config: %w", err)
	}
	if err := tree.WriteFile(config.DefaultPath, cfgBuf.Bytes(), 0o444); err != nil {
		return nil, err
	}
	var man bytes.Buffer
	if err := manifest.Generate(tree.Dir, &man); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	res.ManifestFiles = bytes.Count(man.Bytes(), []byte("\n"))
	if err := tree.WriteFile(ManifestPath, man.Bytes(), 0o444); err != nil {
		return nil, err
	}
	for _, t := range o.Tamper {
		rel, off, err := parseTamper(t)
		if err != nil {
			return nil, err
		}
		if off == middle {
			p, err := tree.Path(rel)
			if err != nil {
				return nil, err
			}
			n, err := size(p)
			if err != nil {
				return nil, fmt.Errorf("-tamper %s: %w", rel, err)
			}
			off = n / 2
		}
		if err := tree.FlipByte(rel, off); err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Log, "kwyre-image: TAMPERED %s at offset %d (test image)\n", rel, off)
	}
	bootMedium := "boot medium watched (" + BootDevice + ")"
	if !res.WatchesBootMedium {
		bootMedium = "boot medium not watched (the kernel's storage drivers are neither built in nor loaded)"
	}
	stage("config and manifest: %d files, model %s, %s", res.ManifestFiles, where(res.ModelOnPartition), bootMedium)

	// 5. Initramfs.
	skip := func(rel string) bool { return res.ModelOnPartition && rel == "model/model.gguf" }
	if err := writeFile(res.Initramfs, func(w io.Writer) error {
		return initramfs.Write(w, tree.Dir, initramfs.Options{Skip: skip})
	}); err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	if res.InitramfsSize, err = size(res.Initramfs); err != nil {
		return nil, err
	}
	stage("initramfs: %s (%s)", res.Initramfs, human(res.InitramfsSize))

	// 6. UKI.
	cmdline := BaseCmdline
	if o.Cmdline != "" {
		cmdline += " " + o.Cmdline
	}
	secs, err := uki.WriteSections(work, uki.OSRelease(o.Version), cmdline, o.Kernel, res.Initramfs)
	if err != nil {
		return nil, err
	}
	if err := uki.Build(o.Stub, res.EFI, secs); err != nil {
		return nil, err
	}
	if res.EFISize, err = size(res.EFI); err != nil {
		return nil, err
	}
	stage("UKI: %s (%s), cmdline %q", res.EFI, human(res.EFISize), cmdline)

	// 7. Model partition.
	var parts []disk.Part
	espFile := filepath.Join(work, "esp.img")
	efiSum, err := fileSHA256(res.EFI)
	if err != nil {
		return nil, err
	}
	vol, _ := strconv.ParseUint(efiSum[:8], 16, 32)
	if _, err := disk.WriteESP(espFile, res.EFI, uint32(vol)); err != nil {
		return nil, err
	}
	parts = append(parts, disk.ESP(espFile))
	if res.ModelOnPartition {
		modelFile := filepath.Join(work, "model."+o.ModelFS)
		mdir, _ := tree.Path("/model")
		n, err := disk.WriteModelFS(o.ModelFS, modelFile, mdir, disk.GUIDFrom([]byte("kwyre model fs"), []byte(efiSum)))
		if err != nil {
			return nil, err
		}
		parts = append(parts, disk.Model(modelFile))
		stage("model partition %q: %s, %s", disk.ModelPartitionName, o.ModelFS, human(n))
	} else {
		stage("model partition: none (model in the initramfs)")
	}

	// 8. The disk.
	if res.ImageSize, err = disk.WriteGPT(res.Image, parts); err != nil {
		return nil, err
	}
	if res.ImageSHA256, err = fileSHA256(res.Image); err != nil {
		return nil, err
	}
	stage("disk: %s (%s)", res.Image, human(res.ImageSize))
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// checkTreeRelease compares the release a module tree names in its
// "version" file (kernel-config/build.sh writes one) with the kernel's.
func checkTreeRelease(dir, release string) error {
	b, err := os.ReadFile(filepath.Join(dir, "version"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("module tree: %w", err)
	}
	if v := strings.TrimSpace(string(b)); v != release {
		return fmt.Errorf("module tree %s is for kernel %s, the kernel is %s (rebuild with make kernel, or give the matching -modules)", dir, v, release)
	}
	return nil
}

// checkSigner verifies that every module the image carries is signed by
// the key whose certificate is at certPath, and that the kernel trusts
// that certificate (it is built into the kernel's keyring, so its DER
// bytes are in the kernel). The kernel refuses anything else under
// MODULE_SIG_FORCE; this says so at build time, naming the module.
func checkSigner(kimg *kernel.Image, certPath, dir string, mods []kmod.Module) error {
	if certPath == "" || len(mods) == 0 {
		return nil
	}
	cert, err := kmod.ReadCertificate(certPath)
	if err != nil {
		return err
	}
	trusted, err := kimg.Contains(cert.Raw)
	if err != nil {
		return fmt.Errorf("module signing certificate: %w", err)
	}
	if !trusted {
		return fmt.Errorf("the kernel %s does not carry the module signing certificate %s: it was built with another key (make kernel rebuilds it with the key in build/kernel-keys)", kimg.Path, certPath)
	}
	for _, m := range mods {
		data, err := kmod.ReadModule(filepath.Join(dir, m.Path))
		if err != nil {
			return err
		}
		if err := kmod.VerifyModule(data, cert); err != nil {
			return fmt.Errorf("module %s: %w: the kernel accepts only modules signed with the key of %s (scripts/sign-file, see kernel-config/README.md)", m.Path, err, certPath)
		}
	}
	return nil
}

// allBuiltin reports whether the kernel has every module of names built in.
func allBuiltin(mt *kmod.Tree, names []string) bool {
	for _, n := range names {
		if !mt.Builtin(n) {
			return false
		}
	}
	return true
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "(release unknown)"
	}
	return s
}

func moduleNames(ms []kmod.Module) string {
	var n []string
	for _, m := range ms {
		n = append(n, m.Name)
	}
	return strings.Join(n, " ")
}

func where(partition bool) string {
	if partition {
		return "on the read-only partition"
	}
	return "in the initramfs"
}

// middle marks a tamper offset left to the builder: the file's middle byte.
const middle = -1 << 62

// parseTamper splits "path[@offset]"; the default offset is the middle of the file.
func parseTamper(s string) (string, int64, error) {
	rel, offS, ok := strings.Cut(s, "@")
	if rel == "" {
		return "", 0, errors.New("-tamper: empty path")
	}
	if !ok {
		return rel, middle, nil
	}
	off, err := strconv.ParseInt(offS, 0, 64)
	if err != nil {
		return "", 0, fmt.Errorf("-tamper %q: bad offset: %w", s, err)
	}
	return rel, off, nil
}

// writeFile writes through a temporary file renamed into place.
func writeFile(path string, fill func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

func size(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}
