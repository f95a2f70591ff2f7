package gpudev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const devicesWithUVM = `Character devices:
  1 mem
  4 /dev/vc/0
195 nvidia
195 nvidiactl
234 nvidia-uvm
235 nvidia-caps

Block devices:
  7 loop
254 nvidia
`

// fakeProc lays out the files the driver provides in /proc.
func fakeProc(t *testing.T, devices string, gpus map[string]string) string {
	t.Helper()
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "devices"), []byte(devices), 0o644)
	for bus, info := range gpus {
		d := filepath.Join(root, "driver/nvidia/gpus", bus)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "information"), []byte(info), 0o644)
	}
	return root
}

func info(minor string) string {
	return "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 50\nGPU UUID: \t GPU-0\nVideo BIOS: \t 96.00.99.00.01\nBus Type: \t PCIe\nDMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\nBus Location: \t 0000:1b:00.0\nDevice Minor: \t " + minor + "\nGPU Excluded:\t No\n"
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name    string
		devices string
		gpus    map[string]string
		want    []Node
		wantErr string
	}{
		{"two GPUs with uvm", devicesWithUVM, map[string]string{"0000:1b:00.0": info("1"), "0000:0a:00.0": info("0")}, []Node{
			{"nvidiactl", 195, 255}, {"nvidia0", 195, 0}, {"nvidia1", 195, 1}, {"nvidia-uvm", 234, 0}, {"nvidia-uvm-tools", 234, 1},
		}, ""},
		{"legacy name, no uvm", "Character devices:\n195 nvidia-frontend\n", map[string]string{"0000:01:00.0": info("0")}, []Node{
			{"nvidiactl", 195, 255}, {"nvidia0", 195, 0},
		}, ""},
		{"no driver", "Character devices:\n  1 mem\n\nBlock devices:\n254 nvidia\n", nil, nil, "no NVIDIA driver"},
		{"bad minor", devicesWithUVM, map[string]string{"0000:01:00.0": info("x")}, nil, "bad device minor"},
		{"no minor", devicesWithUVM, map[string]string{"0000:01:00.0": "Model: x\n"}, nil, "no device minor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Plan(fakeProc(t, tt.devices, tt.gpus))
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Plan error = %v, want %q", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Plan = %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := Plan(fakeProc(t, "Character devices:\n", nil)); !errors.Is(err, ErrNoDriver) {
		t.Errorf("err = %v, want ErrNoDriver", err)
	}
}

func TestCreate(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	dev := t.TempDir()
	nodes := []Node{{"nvidiactl", 195, 255}, {"nvidia0", 195, 0}, {"nvidia-uvm", 234, 0}}
	// A node already there with the right number and wrong mode is fixed.
	if err := unix.Mknod(filepath.Join(dev, "nvidia0"), unix.S_IFCHR|0o666, int(unix.Mkdev(195, 0))); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 2; round++ {
		if err := Create(dev, nodes, 801); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	for _, n := range nodes {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dev, n.Name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != unix.S_IFCHR|0o660 || st.Rdev != unix.Mkdev(n.Major, n.Minor) || st.Uid != 0 || st.Gid != 801 {
			t.Errorf("%s: mode %o rdev %d:%d uid %d gid %d", n.Name, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), st.Uid, st.Gid)
		}
	}
	// Something else in the way is an error.
	os.WriteFile(filepath.Join(dev, "nvidia1"), nil, 0o644)
	if err := Create(dev, []Node{{"nvidia1", 195, 1}}, 801); err == nil || !strings.Contains(err.Error(), "not char device") {
		t.Errorf("err = %v", err)
	}
}

// TestRealDriver runs where an NVIDIA driver is loaded (skipped elsewhere):
// the plan from the real /proc must name the nodes the driver's own
// nvidia-modprobe made in /dev.
func TestRealDriver(t *testing.T) {
	nodes, err := Plan("/proc")
	if errors.Is(err, ErrNoDriver) {
		t.Skip("no NVIDIA driver on this machine")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan: %v", nodes)
	for _, n := range nodes {
		var st unix.Stat_t
		p := filepath.Join("/dev", n.Name)
		if err := unix.Stat(p, &st); err != nil {
			t.Logf("%s: %v (not created on this host)", p, err)
			continue
		}
		if st.Rdev != unix.Mkdev(n.Major, n.Minor) {
			t.Errorf("%s is %d:%d, plan says %d:%d", p, unix.Major(st.Rdev), unix.Minor(st.Rdev), n.Major, n.Minor)
		}
	}
	if os.Geteuid() == 0 {
		dir := t.TempDir()
		if err := Create(dir, nodes, 801); err != nil {
			t.Fatal(err)
		}
		// The made node works: open nvidiactl as root.
		f, err := os.OpenFile(filepath.Join(dir, "nvidiactl"), os.O_RDWR, 0)
		if err != nil {
			t.Logf("open made nvidiactl: %v (a nodev mount?)", err)
		} else {
			f.Close()
			fmt.Println("opened the created nvidiactl")
		}
	}
}
