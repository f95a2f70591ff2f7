// Command kwyre-image builds the appliance's boot artefacts:
// initramfs.cpio.zst, the kwyre.efi unified kernel image and the kwyre.img
// GPT disk that `dd` turns into a bootable USB stick.
//
//	kwyre-image -out build [-model FILE] [-model-partition auto|always|never]
//	            [-kernel-flavour kwyre|debian] [-kernel F] [-modules DIR] [-module-cert F]
//	            [-gpu-dir build/gpu [-cuda-lib-path DIRS] [-nvidia-lib-dir DIR]]
//
// The kernel is Kwyre's own (make kernel: build/vmlinuz-kwyre, every boot
// driver built in, no network drivers) unless -kernel-flavour debian picks
// Debian's (build/debian-kernel, whose drivers are modules the image loads).
// -kernel, -modules and -module-cert override the flavour's paths.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kwyre/kwyre/image/builder"
	"github.com/kwyre/kwyre/image/uki"
)

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// flavour is a kernel the build leaves in build/ and the paths that go with it.
type flavour struct {
	kernel, modules, cert string
}

var flavours = map[string]flavour{
	// kernel-config/build.sh: the module tree holds modules.builtin (and
	// NVIDIA's modules in extra/ for a GPU image), which must be signed
	// with the key the kernel was built to trust.
	"kwyre": {"build/vmlinuz-kwyre", "build/kwyre-modules", "build/kernel-keys/signing_key.x509"},
	// tools/install-deps.sh unpacks linux-image-amd64 there; its modules
	// are signed by Debian, whose certificate is not at hand.
	"debian": {"build/debian-kernel/vmlinuz", "build/debian-kernel/modules", ""},
}

func main() {
	var o builder.Options
	var extra, tamper listFlag
	var kflavour string
	flag.StringVar(&o.Bin, "bin", "bin", "folder holding the built programs")
	flag.StringVar(&kflavour, "kernel-flavour", "kwyre", "kernel: kwyre (make kernel; everything built in, no network drivers) or debian (build/debian-kernel, drivers as modules)")
	flag.StringVar(&o.Kernel, "kernel", "", "kernel image (bzImage; default: the flavour's)")
	flag.StringVar(&o.ModulesDir, "modules", "", "the kernel's module tree, lib/modules/RELEASE (default: the flavour's; \"none\": the kernel has every driver built in)")
	flag.StringVar(&o.ModuleCert, "module-cert", "", "certificate every module in the image must be signed with (default: the flavour's, for the flavour's kernel only; \"none\": not checked)")
	flag.StringVar(&o.Stub, "stub", uki.DefaultStub, "systemd EFI stub the UKI is built on")
	flag.StringVar(&o.Model, "model", "", "GGUF model (default: generate the demo model into -out)")
	flag.StringVar(&o.ModelPartition, "model-partition", builder.PartitionAuto, "put the model on a read-only partition: auto (if larger than -partition-threshold), always, never")
	flag.StringVar(&o.ModelFS, "model-fs", "erofs", "model partition filesystem: erofs or squashfs")
	flag.Int64Var(&o.Threshold, "partition-threshold", 256<<20, "auto mode: models larger than this many bytes go to a partition")
	flag.StringVar(&o.Cmdline, "cmdline", "", "extra kernel command-line arguments")
	flag.Var(&extra, "extra-modules", "comma-separated extra kernel modules to load (e.g. virtio_net for the NIC test)")
	flag.Var(&tamper, "tamper", "TESTS ONLY: PATH[@OFFSET] inside the image whose byte is flipped after the manifest is made")
	var cudaPath string
	flag.StringVar(&o.GPU.Dir, "gpu-dir", "", "GPU image: folder holding lib/ollama/libggml-cuda.so and libggml-base.so* (make cuda writes build/gpu)")
	flag.StringVar(&cudaPath, "cuda-lib-path", defaultCUDALibPath(), "GPU image: colon-separated folders holding the CUDA runtime libraries the backend needs")
	flag.StringVar(&o.GPU.DriverDir, "nvidia-lib-dir", "", "GPU image: folder holding the NVIDIA driver's libcuda.so.1 and libnvidia-ml.so.1 (default: ldconfig -p)")
	flag.StringVar(&o.Version, "version", "0.1", "version recorded in the UKI's .osrel")
	flag.StringVar(&o.Out, "out", "build", "output folder")
	flag.BoolVar(&o.Keep, "keep", false, "keep the staging tree and intermediate files in OUT/work")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "kwyre-image: unexpected arguments %q\n", flag.Args())
		flag.Usage()
		os.Exit(2)
	}
	f, ok := flavours[kflavour]
	if !ok {
		fmt.Fprintf(os.Stderr, "kwyre-image: -kernel-flavour %q: want kwyre or debian\n", kflavour)
		os.Exit(2)
	}
	// The flavour's certificate belongs to the flavour's kernel: another
	// kernel given with -kernel gets no signer check unless -module-cert says.
	cert := f.cert
	if o.Kernel != "" && o.Kernel != f.kernel {
		cert = ""
	}
	o.Kernel = pick(o.Kernel, f.kernel)
	o.ModulesDir = pick(o.ModulesDir, f.modules)
	o.ModuleCert = pick(o.ModuleCert, cert)
	o.ExtraModules, o.Tamper = extra, tamper
	for _, d := range strings.Split(cudaPath, ":") {
		if d != "" {
			o.GPU.LibPath = append(o.GPU.LibPath, d)
		}
	}
	o.Log = os.Stdout
	res, err := builder.Build(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kwyre-image: %v\n", err)
		os.Exit(1)
	}
	where := "initramfs"
	if res.ModelOnPartition {
		where = "read-only partition"
	}
	fmt.Printf("kwyre-image: done in %.1fs\n", res.Seconds)
	fmt.Printf("  kernel         %s (%s), %d modules\n", o.Kernel, res.KernelRelease, len(res.Modules))
	fmt.Printf("  model          %12d bytes (%s)\n", res.ModelSize, where)
	fmt.Printf("  initramfs      %12d bytes  %s\n", res.InitramfsSize, res.Initramfs)
	fmt.Printf("  UKI            %12d bytes  %s\n", res.EFISize, res.EFI)
	fmt.Printf("  disk image     %12d bytes  %s\n", res.ImageSize, res.Image)
	if o.GPU.Dir != "" {
		fmt.Printf("  GPU            %12d files  backend %s, NVIDIA driver %s\n", res.GPULibraries, builder.BackendDir, res.GPUDriver)
	}
	fmt.Printf("  manifest       %12d files\n", res.ManifestFiles)
	fmt.Printf("  sha256(kwyre.img) %s\n", res.ImageSHA256)
}

// pick returns the flag's value, the flavour's when the flag was not given,
// and "" for "none".
func pick(flagValue, flavourValue string) string {
	switch flagValue {
	case "":
		return flavourValue
	case "none":
		return ""
	}
	return flagValue
}

// defaultCUDALibPath lists the CUDA toolkit's library folders that exist:
// $CUDA_HOME's, then /usr/local/cuda's.
func defaultCUDALibPath() string {
	var dirs []string
	for _, root := range []string{os.Getenv("CUDA_HOME"), "/usr/local/cuda"} {
		if root == "" {
			continue
		}
		for _, sub := range []string{"lib64", "targets/x86_64-linux/lib"} {
			d := filepath.Join(root, sub)
			if st, err := os.Stat(d); err == nil && st.IsDir() {
				dirs = append(dirs, d)
			}
		}
	}
	return strings.Join(dirs, ":")
}
