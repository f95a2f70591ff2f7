// Command kwyre-image builds the appliance's boot artefacts:
// initramfs.cpio.zst, the kwyre.efi unified kernel image and the kwyre.img
// GPT disk that `dd` turns into a bootable USB stick.
//
//	kwyre-image -out build [-model FILE] [-model-partition auto|always|never]
//	            [-gpu-dir build/gpu [-cuda-lib-path DIRS] [-nvidia-lib-dir DIR]]
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

func main() {
	var o builder.Options
	var extra, tamper listFlag
	flag.StringVar(&o.Bin, "bin", "bin", "folder holding the built programs")
	flag.StringVar(&o.Kernel, "kernel", "build/debian-kernel/vmlinuz", "kernel image (bzImage)")
	flag.StringVar(&o.KernelVersion, "kernel-version", "", "kernel release (default: the 'version' file beside -kernel)")
	flag.StringVar(&o.ModulesDir, "modules", "build/debian-kernel/modules", "the kernel's unpacked module tree")
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
