package builder

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/kwyre/kwyre/image/kmod"
	"github.com/kwyre/kwyre/init/config"
)

// gpuInputs are real shared libraries and module files built with gcc that
// stand in for the CUDA backend, the CUDA runtime and the NVIDIA driver:
// the builder handles them exactly as it handles the real ones (ld.so
// resolves them, the manifest hashes them).
type gpuInputs struct {
	gpu     GPU
	cudaDir string // holds libcudart.so.12, which the backend links
	drvDir  string
	version string // the image's kernel release
}

func gcc(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("gcc", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func writeC(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func makeGPUInputs(t *testing.T, driverRelease string) gpuInputs {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed")
	}
	root := t.TempDir()
	in := gpuInputs{cudaDir: filepath.Join(root, "cuda", "lib64"), drvDir: filepath.Join(root, "driver")}
	back := filepath.Join(root, "gpu", "lib", "ollama")
	for _, d := range []string{in.cudaDir, in.drvDir, back} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The CUDA runtime stand-in lives outside the backend's folder, found
	// only through -cuda-lib-path.
	// Named as CUDA 12's, whose driver floor (525.60.13) the build checks.
	writeC(t, in.cudaDir, "rt.c", "int kw_rt(void){return 1;}\n")
	gcc(t, in.cudaDir, "-shared", "-fPIC", "-Wl,-soname,libcudart.so.12", "-o", "libcudart.so.12.8.90", "rt.c")
	symlink(t, "libcudart.so.12.8.90", filepath.Join(in.cudaDir, "libcudart.so.12"))
	writeC(t, back, "base.c", "int ggml_base(void){return 2;}\n")
	gcc(t, back, "-shared", "-fPIC", "-Wl,-soname,libggml-base.so.0", "-o", "libggml-base.so.0.0.0", "base.c")
	symlink(t, "libggml-base.so.0.0.0", filepath.Join(back, "libggml-base.so.0"))
	symlink(t, "libggml-base.so.0", filepath.Join(back, "libggml-base.so"))
	writeC(t, back, "cuda.c", "#include <math.h>\nint ggml_base(void); int kw_rt(void);\ndouble ggml_cuda(double x){return sin(x)+ggml_base()+kw_rt();}\n")
	gcc(t, back, "-shared", "-fPIC", "-o", "libggml-cuda.so", "cuda.c", "-L.", "-l:libggml-base.so.0", "-L"+in.cudaDir, "-l:libcudart.so.12", "-lm")
	for _, f := range []string{"base.c", "cuda.c"} {
		os.Remove(filepath.Join(back, f))
	}
	for _, lib := range []string{"libcuda", "libnvidia-ml"} {
		writeC(t, in.drvDir, lib+".c", "int "+strings.ReplaceAll(lib, "-", "_")+"_init(void){return 0;}\n")
		real := lib + ".so." + driverRelease
		gcc(t, in.drvDir, "-shared", "-fPIC", "-Wl,-soname,"+lib+".so.1", "-o", real, lib+".c")
		symlink(t, real, filepath.Join(in.drvDir, lib+".so.1"))
	}
	b, err := os.ReadFile("../../build/debian-kernel/version")
	if err != nil {
		t.Skipf("kernel version: %v", err)
	}
	in.version = strings.TrimSpace(string(b))
	in.gpu = GPU{Dir: filepath.Join(root, "gpu"), LibPath: []string{in.cudaDir}, DriverDir: in.drvDir, HostModules: t.TempDir()}
	return in
}

type modSpec struct {
	vermagic string // kernel release the stand-in modules claim
	release  string // nvidia.ko's version=
	signed   bool
	none     bool // no NVIDIA modules at all
}

// makeModuleTree copies the Debian kernel's modules the image always
// loads into a fresh tree and adds NVIDIA module stand-ins: relocatable
// ELF objects with a .modinfo section, as kmod reads it.
func makeModuleTree(t *testing.T, s modSpec) string {
	t.Helper()
	deb := "../../build/debian-kernel/modules"
	mt, err := kmod.Open(deb)
	if err != nil {
		t.Skip(err)
	}
	mods, err := mt.Resolve(BaseModules)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, m := range mods {
		data, err := os.ReadFile(filepath.Join(deb, m.Path))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, m.Path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(deb, "modules.builtin")); err == nil {
		os.WriteFile(filepath.Join(dir, "modules.builtin"), b, 0o644)
	}
	if s.none {
		return dir
	}
	addNvidiaStandIns(t, filepath.Join(dir, "updates", "dkms"), s, nil)
	return dir
}

// addNvidiaStandIns writes nvidia.ko, nvidia-uvm.ko and nvidia-modeset.ko
// stand-ins into dir. With s.signed, sign signs each one; with sign nil
// only the signature marker is appended (the Debian path checks no more).
func addNvidiaStandIns(t *testing.T, nv string, s modSpec, sign func(path string)) {
	t.Helper()
	os.MkdirAll(nv, 0o755)
	for _, name := range []string{"nvidia", "nvidia-uvm", "nvidia-modeset"} {
		deps := ""
		if name != "nvidia" {
			deps = "nvidia"
		}
		info := []string{"name=" + kmod.Canonical(name), "vermagic=" + s.vermagic + " SMP preempt mod_unload modversions ", "version=" + s.release, "depends=" + deps}
		var src strings.Builder
		for i, kv := range info {
			fmt.Fprintf(&src, "__attribute__((section(\".modinfo\"), used)) static const char m%d[] = %q;\n", i, kv)
		}
		writeC(t, nv, "m.c", src.String())
		gcc(t, nv, "-c", "-o", name+".ko", "m.c")
		os.Remove(filepath.Join(nv, "m.c"))
		ko := filepath.Join(nv, name+".ko")
		switch {
		case !s.signed:
		case sign != nil:
			sign(ko)
		default:
			f, err := os.OpenFile(ko, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte(kmod.SigMarker))
			f.Close()
		}
	}
}

// initramfsPaths lists the initramfs's records by name.
func initramfsPaths(t *testing.T, path string) map[string]cpio.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	raw, err := io.ReadAll(dec)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]cpio.Record{}
	for _, r := range recs {
		out[r.Name] = r
	}
	return out
}

func TestGPUImage(t *testing.T) {
	base := inputs(t)
	in := makeGPUInputs(t, "575.1.2")
	good := modSpec{vermagic: in.version, release: "575.1.2", signed: true}

	t.Run("backend, its libraries, driver and modules land in the image", func(t *testing.T) {
		o := base
		o.Out, o.Keep, o.ModelPartition, o.GPU = t.TempDir(), true, PartitionNever, in.gpu
		o.ModulesDir = makeModuleTree(t, good)
		res, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		if res.GPUDriver != "575.1.2" {
			t.Errorf("driver release %q", res.GPUDriver)
		}
		root := filepath.Join(o.Out, "work", "rootfs")
		man, err := os.ReadFile(filepath.Join(root, "etc/kwyre/manifest"))
		if err != nil {
			t.Fatal(err)
		}
		recs := initramfsPaths(t, res.Initramfs)
		files := []string{ // regular files: in the initramfs and the manifest
			"usr/lib/ollama/libggml-cuda.so",
			"usr/lib/ollama/libggml-base.so.0.0.0",
			"usr/lib/kwyre-gpu/libcudart.so.12.8.90",
			"usr/lib/kwyre-gpu/libcuda.so.575.1.2",
			"usr/lib/kwyre-gpu/libnvidia-ml.so.575.1.2",
			"lib/x86_64-linux-gnu/libm.so.6", // as ld.so reports it
			"lib/modules/" + in.version + "/updates/dkms/nvidia.ko",
			"lib/modules/" + in.version + "/updates/dkms/nvidia-uvm.ko",
			"lib/modules/" + in.version + "/updates/dkms/nvidia-modeset.ko",
		}
		for _, f := range files {
			r, ok := recs[f]
			if !ok || r.Mode&cpio.S_IFMT != cpio.S_IFREG {
				t.Errorf("%s: not a file in the initramfs", f)
			}
			if !bytes.Contains(man, []byte("  "+f+"\n")) {
				t.Errorf("%s: not in the manifest", f)
			}
		}
		for _, l := range []string{"usr/lib/ollama/libggml-base.so.0", "usr/lib/ollama/libggml-base.so", "usr/lib/kwyre-gpu/libcuda.so.1", "usr/lib/kwyre-gpu/libnvidia-ml.so.1"} {
			if r, ok := recs[l]; !ok || r.Mode&cpio.S_IFMT != cpio.S_IFLNK {
				t.Errorf("%s: not a symlink in the initramfs", l)
			}
		}
		for f := range recs {
			if strings.HasPrefix(f, "tmp/") {
				t.Errorf("%s: a build machine's folder leaked into the image", f)
			}
		}

		cfg, err := config.Load(filepath.Join(root, "etc/kwyre/config.json"))
		if err != nil {
			t.Fatal(err)
		}
		inf := cfg.Service("inference")
		args := strings.Join(inf.Args, " ")
		if !strings.Contains(args, "-backend-dir /usr/lib/ollama") {
			t.Errorf("inference args %q: no -backend-dir", args)
		}
		wantLP := "LD_LIBRARY_PATH=/usr/lib/ollama:/usr/lib/kwyre-gpu"
		if strings.Join(inf.Env, " ") != wantLP {
			t.Errorf("inference env %q, want %q", inf.Env, wantLP)
		}
		var nvidia []string
		for _, m := range cfg.Modules {
			if strings.Contains(m, "/updates/dkms/") {
				nvidia = append(nvidia, filepath.Base(m))
			}
		}
		if strings.Join(nvidia, " ") != "nvidia.ko nvidia-uvm.ko nvidia-modeset.ko" {
			t.Errorf("config loads NVIDIA modules %v, want nvidia first", nvidia)
		}
	})

	other := "5.10.0-99-amd64"
	hostWithModules := makeModuleTree(t, modSpec{vermagic: other, release: "575.1.2", signed: true})
	tests := []struct {
		name    string
		mut     func(o *Options)
		mods    modSpec
		wantErr []string
	}{
		{"no backend", func(o *Options) { o.GPU.Dir = t.TempDir() }, good,
			[]string{"no lib/ollama/libggml-cuda.so", "make cuda"}},
		{"CUDA runtime not found", func(o *Options) { o.GPU.LibPath = nil }, good,
			[]string{"libcudart.so.12", "-cuda-lib-path"}},
		{"no driver", func(o *Options) { o.GPU.DriverDir = t.TempDir() }, good,
			[]string{"NVIDIA driver library libcuda.so.1", "-nvidia-lib-dir"}},
		{"modules for another kernel", nil, modSpec{vermagic: other, release: "575.1.2", signed: true},
			[]string{"built for kernel " + other, "the image's kernel is " + in.version}},
		{"unsigned modules", nil, modSpec{vermagic: in.version, release: "575.1.2"},
			[]string{"not signed", "lockdown"}},
		{"driver and module releases differ", nil, modSpec{vermagic: in.version, release: "580.9.9", signed: true},
			[]string{"driver 580.9.9 but libcuda.so.1 is 575.1.2"}},
		{"modules only for the build machine's kernel", func(o *Options) { o.GPU.HostModules = hostWithModules },
			modSpec{none: true}, []string{"for the image's kernel " + in.version, "for kernel " + other, "-modules " + hostWithModules}},
		{"no modules anywhere", nil, modSpec{none: true},
			[]string{"for the image's kernel " + in.version, "this machine has none"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			o.Out, o.ModelPartition, o.GPU = t.TempDir(), PartitionNever, in.gpu
			o.ModulesDir = makeModuleTree(t, tc.mods)
			if tc.mut != nil {
				tc.mut(&o)
			}
			_, err := Build(o)
			if err == nil {
				t.Fatal("Build succeeded")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, err := os.Stat(filepath.Join(o.Out, "kwyre.img")); err == nil {
				t.Error("a failed build left kwyre.img")
			}
		})
	}
}

// A driver older than the CUDA runtime needs would leave the service on the
// CPU: the build refuses it.
func TestGPUImageDriverTooOldForCUDA(t *testing.T) {
	base := inputs(t)
	in := makeGPUInputs(t, "520.61.05")
	o := base
	o.Out, o.ModelPartition, o.GPU = t.TempDir(), PartitionNever, in.gpu
	o.ModulesDir = makeModuleTree(t, modSpec{vermagic: in.version, release: "520.61.05", signed: true})
	_, err := Build(o)
	if err == nil || !strings.Contains(err.Error(), "CUDA 12.8.90, which needs an NVIDIA driver 525.60.13 or newer, but libcuda.so.1 is 520.61.05") {
		t.Fatalf("Build: %v", err)
	}
	if _, err := os.Stat(filepath.Join(o.Out, "kwyre.img")); err == nil {
		t.Error("a failed build left kwyre.img")
	}
}

func TestParseLdconfig(t *testing.T) {
	out := []byte(`1234 libs found in cache ` + "`/etc/ld.so.cache'" + `
	libnvidia-ml.so.1 (libc6) => /usr/lib/i386-linux-gnu/libnvidia-ml.so.1
	libnvidia-ml.so.1 (libc6,x86-64) => /usr/local/nvidia/lib64/libnvidia-ml.so.1
	libnvidia-ml.so.1 (libc6,x86-64) => /lib/libnvidia-ml.so.1
	libcuda.so (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so
`)
	tests := []struct{ name, want string }{
		{"libnvidia-ml.so.1", "/usr/local/nvidia/lib64/libnvidia-ml.so.1"},
		{"libcuda.so.1", ""},
		{"libcuda.so", "/usr/lib/x86_64-linux-gnu/libcuda.so"},
	}
	for _, tc := range tests {
		if got := parseLdconfig(out, tc.name); got != tc.want {
			t.Errorf("parseLdconfig(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The signature check must hold for the kernel's own signed modules.
func TestDebianModulesAreSigned(t *testing.T) {
	deb := "../../build/debian-kernel/modules"
	mt, err := kmod.Open(deb)
	if err != nil {
		t.Skip(err)
	}
	for _, name := range []string{"evdev", "virtio_net"} {
		m, err := mt.Module(name)
		if err != nil {
			t.Fatal(err)
		}
		data, err := kmod.ReadModule(filepath.Join(deb, m.Path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(data, []byte(kmod.SigMarker)) {
			t.Errorf("%s: Debian's signed module lacks the signature marker", m.Path)
		}
	}
}

// kwyreKernel returns Kwyre's built kernel, its module tree, its signing
// key and release, or skips.
func kwyreKernel(t *testing.T) (kernel, tree, key, release string) {
	t.Helper()
	build := "../../build"
	kernel = filepath.Join(build, "vmlinuz-kwyre")
	tree = filepath.Join(build, "kwyre-modules")
	key = filepath.Join(build, "kernel-keys", "signing_key.pem")
	for _, p := range []string{kernel, filepath.Join(tree, "modules.builtin"), key, filepath.Join(build, "kernel-obj", "scripts", "sign-file")} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("Kwyre's kernel is not built: %v", err)
		}
	}
	b, err := os.ReadFile(filepath.Join(tree, "version"))
	if err != nil {
		t.Fatal(err)
	}
	return kernel, tree, key, strings.TrimSpace(string(b))
}

// signer signs modules with the kernel's sign-file and the PEM key (which
// holds the certificate too).
func signer(t *testing.T, pem string) func(string) {
	return func(ko string) {
		t.Helper()
		signFile := "../../build/kernel-obj/scripts/sign-file"
		if out, err := exec.Command(signFile, "sha512", pem, pem, ko).CombinedOutput(); err != nil {
			t.Fatalf("sign-file: %v\n%s", err, out)
		}
	}
}

// kwyreModuleTree copies the kernel's module tree (its lists: no .ko) and
// puts NVIDIA stand-ins into extra/, signed by sign.
func kwyreModuleTree(t *testing.T, tree string, s modSpec, sign func(string)) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"modules.builtin", "modules.builtin.modinfo", "modules.order", "version"} {
		b, err := os.ReadFile(filepath.Join(tree, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	addNvidiaStandIns(t, filepath.Join(dir, "extra"), s, sign)
	return dir
}

// TestGPUImageKwyreKernel: with Kwyre's kernel the NVIDIA modules sit in
// its module tree's extra/ and must be signed with the build's key; the
// builder verifies each signature against that certificate.
func TestGPUImageKwyreKernel(t *testing.T) {
	base := inputs(t)
	kernel, tree, key, release := kwyreKernel(t)
	in := makeGPUInputs(t, "575.1.2")
	base.Kernel, base.ModuleCert = kernel, filepath.Join(filepath.Dir(key), "signing_key.x509")
	good := modSpec{vermagic: release, release: "575.1.2", signed: true}

	t.Run("signed with the build's key", func(t *testing.T) {
		o := base
		o.Out, o.Keep, o.ModelPartition, o.GPU = t.TempDir(), true, PartitionAlways, in.gpu
		o.ModulesDir = kwyreModuleTree(t, tree, good, signer(t, key))
		res, err := Build(o)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"/lib/modules/" + release + "/extra/nvidia.ko",
			"/lib/modules/" + release + "/extra/nvidia-uvm.ko",
			"/lib/modules/" + release + "/extra/nvidia-modeset.ko",
		}
		if strings.Join(res.Modules, " ") != strings.Join(want, " ") {
			t.Errorf("modules %v, want only NVIDIA's %v (everything else is built in)", res.Modules, want)
		}
	})

	other := filepath.Join(t.TempDir(), "other.pem")
	if out, err := exec.Command("openssl", "req", "-new", "-nodes", "-x509", "-batch", "-days", "1",
		"-subj", "/CN=another key", "-newkey", "rsa:2048", "-keyout", other, "-out", other).CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name    string
		sign    func(string)
		wantErr string
	}{
		{"signed with another key", signer(t, other), "not by the certificate's key"},
		{"a signature marker and no signature", nil, "module signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			o.Out, o.ModelPartition, o.GPU = t.TempDir(), PartitionNever, in.gpu
			o.ModulesDir = kwyreModuleTree(t, tree, good, tc.sign)
			_, err := Build(o)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "extra/nvidia.ko") {
				t.Fatalf("Build: %v, want an error naming extra/nvidia.ko and %q", err, tc.wantErr)
			}
		})
	}
}
