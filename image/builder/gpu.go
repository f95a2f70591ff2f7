package builder

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/ldd"
	"golang.org/x/sys/unix"

	"github.com/kwyre/kwyre/image/kmod"
	"github.com/kwyre/kwyre/image/rootfs"
)

// GPU names the CUDA pieces a GPU image carries. With Dir "" the image is
// CPU-only.
type GPU struct {
	Dir         string   // qa/gpu/build-cuda.sh's OUT: lib/ollama/libggml-cuda.so, libggml-base.so*
	LibPath     []string // folders holding the CUDA runtime the backend links (libcudart, libcublas...)
	DriverDir   string   // folder holding libcuda.so.1 and libnvidia-ml.so.1; "" = ask ldconfig -p
	HostModules string   // the build machine's module tree, named in errors; "" = /lib/modules/$(uname -r)
}

// BackendDir is where the image keeps the CUDA backend; the binding loads
// backends only from a path containing lib/ollama.
const BackendDir = "/usr/lib/ollama"

// GPULibDir holds the libraries the backend and the driver need that the
// build machine keeps outside the loader's default folders (the CUDA
// toolkit, a driver under /usr/local): one folder whatever the build
// machine's layout, and never under a folder the appliance mounts over
// (/tmp, /run) or the manifest skips.
const GPULibDir = "/usr/lib/kwyre-gpu"

// Driver user-space libraries: libcuda (the CUDA driver API) and NVML are
// required; libcuda opens the others itself when it compiles PTX for a GPU
// the backend has no machine code for.
var (
	DriverLibs         = []string{"libcuda.so.1", "libnvidia-ml.so.1"}
	DriverLibsOptional = []string{"libnvidia-ptxjitcompiler.so.1", "libnvidia-nvvm.so.4"}
	NvidiaModules      = []string{"nvidia", "nvidia_uvm", "nvidia_modeset"}
)

// gpuStaged is what stageGPU put into the tree.
type gpuStaged struct {
	Backend       []string // paths inside the image under BackendDir
	Libs          []string // libraries staged: system ones at their host paths, the others in GPULibDir
	LibraryPath   string   // LD_LIBRARY_PATH for the inference service
	DriverVersion string   // from libcuda.so.VERSION; "" if its name has none
}

// systemLibDirs are searched by the loader without LD_LIBRARY_PATH.
var systemLibDirs = map[string]bool{
	"/lib": true, "/lib64": true, "/usr/lib": true, "/usr/lib64": true,
	"/lib/x86_64-linux-gnu": true, "/usr/lib/x86_64-linux-gnu": true,
}

// stageGPU copies the backend to BackendDir, the NVIDIA driver libraries
// and every library the backend and the driver need (u-root's ldd, with
// the backend's folder, g.LibPath and the driver's folders searched) to
// their host paths.
func stageGPU(tree *rootfs.Tree, g GPU) (*gpuStaged, error) {
	src, err := filepath.Abs(filepath.Join(g.Dir, "lib", "ollama"))
	if err != nil {
		return nil, err
	}
	cuda := filepath.Join(src, "libggml-cuda.so")
	if _, err := os.Stat(cuda); err != nil {
		return nil, fmt.Errorf("-gpu-dir %s: no lib/ollama/libggml-cuda.so (build it with make cuda on a machine with the CUDA toolkit): %w", g.Dir, err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, fmt.Errorf("-gpu-dir: %w", err)
	}
	st := &gpuStaged{}
	var haveBase bool
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "libggml-") || !strings.Contains(name, ".so") {
			continue
		}
		haveBase = haveBase || strings.HasPrefix(name, "libggml-base.so")
		host := filepath.Join(src, name)
		rel := path.Join(BackendDir, name)
		fi, err := os.Lstat(host)
		if err != nil {
			return nil, fmt.Errorf("backend %s: %w", host, err)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(host)
			if err != nil {
				return nil, fmt.Errorf("backend %s: %w", host, err)
			}
			if strings.Contains(target, "/") {
				return nil, fmt.Errorf("backend %s: symlink to %s leaves lib/ollama", host, target)
			}
			if err := tree.Symlink(target, rel); err != nil {
				return nil, err
			}
		case fi.Mode().IsRegular():
			if err := tree.CopyFile(host, rel, 0o755); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("backend %s: not a file or symlink", host)
		}
		st.Backend = append(st.Backend, rel)
	}
	if !haveBase {
		return nil, fmt.Errorf("-gpu-dir %s: no lib/ollama/libggml-base.so* beside libggml-cuda.so", g.Dir)
	}

	var driver []string
	for _, name := range append(append([]string(nil), DriverLibs...), DriverLibsOptional...) {
		p, err := findDriverLib(g.DriverDir, name)
		if err != nil {
			return nil, err
		}
		if p == "" {
			if contains(DriverLibs, name) {
				where := "ldconfig -p knows none: install the NVIDIA driver on the build machine, or give -nvidia-lib-dir"
				if g.DriverDir != "" {
					where = "not in -nvidia-lib-dir " + g.DriverDir
				}
				return nil, fmt.Errorf("NVIDIA driver library %s: %s", name, where)
			}
			continue
		}
		driver = append(driver, p)
	}
	if real, err := filepath.EvalSymlinks(driver[0]); err == nil {
		if v, ok := strings.CutPrefix(filepath.Base(real), "libcuda.so."); ok && v != "1" {
			st.DriverVersion = v
		}
	}

	// ld.so --list searches LD_LIBRARY_PATH, which u-root's ldd passes on.
	search := append([]string{src}, g.LibPath...)
	for _, d := range driver {
		search = append(search, filepath.Dir(d))
	}
	closure, err := withLibraryPath(strings.Join(search, ":"), func() ([]string, error) {
		return ldd.FList(append([]string{cuda}, driver...)...)
	})
	if err != nil {
		return nil, fmt.Errorf("libraries of the CUDA backend and driver (add folders to search with -cuda-lib-path): %w", err)
	}
	if err := checkCUDADriver(closure, st.DriverVersion); err != nil {
		return nil, err
	}
	chains, err := symlinkChains(driver)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var system, other []string
	for _, p := range append(closure, chains...) {
		if p == src || strings.HasPrefix(p, src+"/") || seen[p] {
			continue // the backend's own files are at BackendDir already
		}
		seen[p] = true
		if systemLibDirs[filepath.Dir(p)] {
			system = append(system, p)
		} else {
			other = append(other, p)
		}
	}
	sort.Strings(system)
	if err := tree.StageLibraries(system); err != nil {
		return nil, err
	}
	st.Libs = system
	moved, err := stageFlat(tree, other, GPULibDir)
	if err != nil {
		return nil, err
	}
	st.Libs = append(st.Libs, moved...)
	st.LibraryPath = BackendDir
	if len(moved) > 0 {
		st.LibraryPath += ":" + GPULibDir
	}
	return st, nil
}

// stageFlat stages host files into dir by their base names: a symlink to
// a file of the same folder stays a symlink, anything else is copied (a
// symlink as the file it leads to). Two files of one name are an error.
func stageFlat(tree *rootfs.Tree, paths []string, dir string) ([]string, error) {
	sort.Strings(paths)
	from := map[string]string{}
	var out []string
	for _, p := range paths {
		name := filepath.Base(p)
		if prev, dup := from[name]; dup {
			return nil, fmt.Errorf("GPU libraries %s and %s: one name, two files", prev, p)
		}
		from[name] = p
		rel := path.Join(dir, name)
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, fmt.Errorf("GPU library %s: %w", p, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return nil, err
			}
			if !strings.Contains(target, "/") {
				if err := tree.Symlink(target, rel); err != nil {
					return nil, err
				}
				out = append(out, rel)
				continue
			}
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, fmt.Errorf("GPU library %s: %w", p, err)
		}
		if err := tree.CopyFile(real, rel, 0o755); err != nil {
			return nil, err
		}
		out = append(out, rel)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// withLibraryPath runs f with LD_LIBRARY_PATH set to p and restores it.
func withLibraryPath(p string, f func() ([]string, error)) ([]string, error) {
	old, had := os.LookupEnv("LD_LIBRARY_PATH")
	if had && old != "" {
		p += ":" + old
	}
	os.Setenv("LD_LIBRARY_PATH", p)
	defer func() {
		if had {
			os.Setenv("LD_LIBRARY_PATH", old)
		} else {
			os.Unsetenv("LD_LIBRARY_PATH")
		}
	}()
	return f()
}

// symlinkChains returns each path and every link and file it leads to.
func symlinkChains(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		for range 40 {
			out = append(out, p)
			fi, err := os.Lstat(p)
			if err != nil {
				return nil, fmt.Errorf("driver library %s: %w", p, err)
			}
			if fi.Mode()&fs.ModeSymlink == 0 {
				break
			}
			next, err := os.Readlink(p)
			if err != nil {
				return nil, err
			}
			if !filepath.IsAbs(next) {
				next = filepath.Join(filepath.Dir(p), next)
			}
			p = next
		}
	}
	return out, nil
}

// findDriverLib finds name in dir, or with dir "" in ldconfig's cache (the
// first x86-64 entry). It returns "" if there is none.
func findDriverLib(dir, name string) (string, error) {
	if dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return "", nil
		} else if err != nil {
			return "", fmt.Errorf("driver library %s: %w", p, err)
		}
		return filepath.Abs(p)
	}
	out, err := exec.Command("ldconfig", "-p").Output()
	if err != nil {
		return "", fmt.Errorf("ldconfig -p (finding %s): %w", name, err)
	}
	return parseLdconfig(out, name), nil
}

var ldconfigLine = regexp.MustCompile(`^\s*(\S+) \(([^)]*)\) => (\S+)$`)

// parseLdconfig returns the path of the first x86-64 entry for name in
// `ldconfig -p` output, or "".
func parseLdconfig(out []byte, name string) string {
	for _, line := range strings.Split(string(out), "\n") {
		m := ldconfigLine.FindStringSubmatch(line)
		if m != nil && m[1] == name && strings.Contains(m[2], "x86-64") {
			return m[3]
		}
	}
	return ""
}

// checkNvidiaModules makes sure mt (the image's module tree) has the
// NVIDIA modules, built for the image's kernel, signed (the image runs
// with lockdown, which refuses unsigned modules), and of the user-space
// driver's version. Without them it names the kernel the build machine
// has them for, if any.
func checkNvidiaModules(mt *kmod.Tree, version string, g GPU, driverVersion string) error {
	for _, name := range NvidiaModules {
		m, err := mt.Module(name)
		if err != nil {
			return missingNvidia(mt.Dir, version, g.HostModules)
		}
		data, err := kmod.ReadModule(filepath.Join(mt.Dir, m.Path))
		if err != nil {
			return err
		}
		info, err := kmod.ParseModinfo(data)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Path, err)
		}
		built := strings.Fields(info["vermagic"])
		if len(built) == 0 || built[0] != version {
			got := "no vermagic"
			if len(built) > 0 {
				got = "kernel " + built[0]
			}
			return fmt.Errorf("NVIDIA module %s is built for %s, the image's kernel is %s: build the modules for %s (or build the image with the kernel they were built for)", m.Path, got, version, version)
		}
		if !bytes.HasSuffix(data, []byte(kmod.SigMarker)) {
			return fmt.Errorf("NVIDIA module %s is not signed: the image's kernel runs with lockdown=confidentiality and refuses unsigned modules (sign it with a key the kernel trusts: scripts/sign-file)", m.Path)
		}
		if v := info["version"]; name == "nvidia" && driverVersion != "" && v != driverVersion {
			return fmt.Errorf("NVIDIA module %s is driver %s but libcuda.so.1 is %s: the user-space driver and the module must be one release", m.Path, v, driverVersion)
		}
	}
	return nil
}

func missingNvidia(dir, version, host string) error {
	want := fmt.Sprintf("NVIDIA kernel modules (%s) for the image's kernel %s: not in %s (for Kwyre's kernel, build them against build/kernel-obj, sign them with build/kernel-keys and put them in %s/extra: kernel-config/README.md)", strings.Join(NvidiaModules, ", "), version, dir, dir)
	hostVersion := ""
	if host == "" {
		var u unix.Utsname
		if err := unix.Uname(&u); err == nil {
			hostVersion = unix.ByteSliceToString(u.Release[:])
			host = "/lib/modules/" + hostVersion
		}
	} else if b, err := os.ReadFile(filepath.Join(filepath.Dir(host), "version")); err == nil {
		hostVersion = strings.TrimSpace(string(b))
	}
	if host == "" {
		return errors.New(want)
	}
	ht, err := kmod.Open(host)
	if err != nil {
		return fmt.Errorf("%s, and this machine has none (%v)", want, err)
	}
	m, err := ht.Module("nvidia")
	if err != nil {
		return fmt.Errorf("%s, and this machine has none in %s", want, host)
	}
	if info, err := ht.Modinfo(m.Path); err == nil {
		if f := strings.Fields(info["vermagic"]); len(f) > 0 {
			hostVersion = f[0]
		}
	}
	if hostVersion == version {
		return fmt.Errorf("%s; %s has them: give -modules %s", want, host, host)
	}
	return fmt.Errorf("%s; this machine has them for kernel %s (%s), which does not match %s: build the image with that kernel (-kernel /boot/vmlinuz-%s -modules %s) or build the modules for %s",
		want, hostVersion, host, version, hostVersion, host, version)
}
