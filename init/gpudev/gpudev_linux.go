// Package gpudev creates the NVIDIA device nodes. The driver registers its
// character devices but creates no nodes (on other systems nvidia-modprobe
// or udev does), and the appliance has neither: init makes them, owned by
// root and the inference service's group, mode 0660, so that only the
// inference service can reach the GPU.
package gpudev

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Node is one device node to create.
type Node struct {
	Name         string // under the device folder, e.g. "nvidia0"
	Major, Minor uint32
}

// ErrNoDriver is returned by Plan when the NVIDIA driver is not loaded.
var ErrNoDriver = errors.New("no NVIDIA driver loaded")

// Plan reads procRoot ("/proc") and returns the nodes the loaded driver
// needs: nvidiactl, one nvidiaN per GPU, and nvidia-uvm and
// nvidia-uvm-tools when nvidia-uvm is loaded.
func Plan(procRoot string) ([]Node, error) {
	majors, err := charMajors(filepath.Join(procRoot, "devices"))
	if err != nil {
		return nil, err
	}
	nv, ok := majors["nvidia-frontend"]
	if !ok {
		nv, ok = majors["nvidia"]
	}
	if !ok {
		return nil, ErrNoDriver
	}
	nodes := []Node{{Name: "nvidiactl", Major: nv, Minor: 255}}
	minors, err := gpuMinors(filepath.Join(procRoot, "driver/nvidia/gpus"))
	if err != nil {
		return nil, err
	}
	for _, m := range minors {
		nodes = append(nodes, Node{Name: fmt.Sprintf("nvidia%d", m), Major: nv, Minor: m})
	}
	if uvm, ok := majors["nvidia-uvm"]; ok {
		nodes = append(nodes, Node{Name: "nvidia-uvm", Major: uvm, Minor: 0}, Node{Name: "nvidia-uvm-tools", Major: uvm, Minor: 1})
	}
	return nodes, nil
}

// charMajors parses the "Character devices:" part of /proc/devices.
func charMajors(p string) (map[string]uint32, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	m := make(map[string]uint32)
	inChar := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "Character devices:":
			inChar = true
			continue
		case strings.HasSuffix(l, "devices:"):
			inChar = false
			continue
		}
		fields := strings.Fields(l)
		if !inChar || len(fields) != 2 {
			continue
		}
		n, err := strconv.ParseUint(fields[0], 10, 32)
		if err != nil {
			continue
		}
		m[fields[1]] = uint32(n)
	}
	return m, sc.Err()
}

// gpuMinors reads "Device Minor:" from each GPU's information file.
func gpuMinors(dir string) ([]uint32, error) {
	infos, err := filepath.Glob(filepath.Join(dir, "*", "information"))
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, p := range infos {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		found := false
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok || strings.TrimSpace(k) != "Device Minor" {
				continue
			}
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err != nil || n >= 255 {
				return nil, fmt.Errorf("%s: bad device minor %q", p, strings.TrimSpace(v))
			}
			out = append(out, uint32(n))
			found = true
		}
		if !found {
			return nil, fmt.Errorf("%s: no device minor", p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// Create makes each node in devDir ("/dev"): a character device, owner
// root, group gid, mode 0660. A node already there with the same device
// number is fixed up (owner, mode); one with another number is an error.
func Create(devDir string, nodes []Node, gid uint32) error {
	for _, n := range nodes {
		p := filepath.Join(devDir, n.Name)
		dev := unix.Mkdev(n.Major, n.Minor)
		var st unix.Stat_t
		switch err := unix.Lstat(p, &st); {
		case err == nil:
			if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != dev {
				return fmt.Errorf("%s exists but is not char device %d:%d", p, n.Major, n.Minor)
			}
		case errors.Is(err, unix.ENOENT):
			if err := unix.Mknod(p, unix.S_IFCHR|0o600, int(dev)); err != nil {
				return fmt.Errorf("mknod %s: %w", p, err)
			}
		default:
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if err := unix.Lchown(p, 0, int(gid)); err != nil {
			return fmt.Errorf("chown %s: %w", p, err)
		}
		if err := unix.Fchmodat(unix.AT_FDCWD, p, 0o660, 0); err != nil {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
	}
	return nil
}
