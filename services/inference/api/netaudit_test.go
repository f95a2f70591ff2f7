package api

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeRoots lays out a procfs with config.gz (from testdata/netaudit/NAME,
// "" for none) and a sysfs as QEMU's q35 machine shows it: lo, and a
// virtio network card at PCI 0000:00:02.0 (virtio0 on the virtio bus).
type fakeSys struct {
	config    string            // testdata/netaudit file; "" = no /proc/config.gz
	netDriver string            // driver bound to virtio0 ("" = none)
	ifaces    []string          // interfaces under virtio0/net visible here (nil: no net folder)
	classNet  map[string]string // /sys/class/net entries: name -> device folder under devices/
}

func (f fakeSys) write(t *testing.T) (proc, sys string) {
	t.Helper()
	root := t.TempDir()
	proc, sys = filepath.Join(root, "proc"), filepath.Join(root, "sys")
	mkdir := func(p string) {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		mkdir(filepath.Dir(p))
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, p string) {
		mkdir(filepath.Dir(p))
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	mkdir(proc)
	if f.config != "" {
		src, err := os.ReadFile(filepath.Join("testdata", "netaudit", f.config))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(proc, "config.gz"))
		if err != nil {
			t.Fatal(err)
		}
		zw := gzip.NewWriter(out)
		zw.Write(src)
		zw.Close()
		out.Close()
	}
	pciDev := filepath.Join(sys, "devices", "pci0000:00", "0000:00:02.0")
	virtio := filepath.Join(pciDev, "virtio0")
	write(filepath.Join(pciDev, "class"), "0x020000\n")
	link("../../../bus/pci/drivers/virtio-pci", filepath.Join(pciDev, "driver"))
	link("../../../devices/pci0000:00/0000:00:02.0", filepath.Join(sys, "bus", "pci", "devices", "0000:00:02.0"))
	write(filepath.Join(virtio, "device"), "0x0001\n")
	link("../../../devices/pci0000:00/0000:00:02.0/virtio0", filepath.Join(sys, "bus", "virtio", "devices", "virtio0"))
	if f.netDriver != "" {
		link("../../../../bus/virtio/drivers/"+f.netDriver, filepath.Join(virtio, "driver"))
	}
	if f.ifaces != nil {
		mkdir(filepath.Join(virtio, "net"))
		for _, i := range f.ifaces {
			mkdir(filepath.Join(virtio, "net", i))
		}
	}
	// A block device on the same bus, no network.
	link("../../../devices/pci0000:00/0000:00:03.0/virtio1", filepath.Join(sys, "bus", "virtio", "devices", "virtio1"))
	write(filepath.Join(sys, "devices", "pci0000:00", "0000:00:03.0", "virtio1", "device"), "0x0002\n")
	write(filepath.Join(sys, "devices", "virtual", "net", "lo", "type"), "772\n")
	link("../../devices/virtual/net/lo", filepath.Join(sys, "class", "net", "lo"))
	for name, dev := range f.classNet {
		d := filepath.Join(sys, "devices", dev)
		write(filepath.Join(d, "type"), "1\n")
		if strings.Contains(dev, "virtio0") {
			link("../../../virtio0", filepath.Join(d, "device"))
		}
		link("../../devices/"+dev, filepath.Join(sys, "class", "net", name))
	}
	return proc, sys
}

func TestReadNetworkKernel(t *testing.T) {
	eth0 := map[string]string{"eth0": "pci0000:00/0000:00:02.0/virtio0/net/eth0"}
	tests := []struct {
		name        string
		sys         fakeSys
		summary     string
		drivers     []string
		hwDrivers   []string // driver of each piece of network hardware
		interfaces  []string
		netdevices  string
		configSaved bool
	}{
		{
			name:       "Kwyre's kernel with a virtio NIC attached",
			sys:        fakeSys{config: "kwyre.config"},
			summary:    "none (CONFIG_NETDEVICES not set; no net devices besides lo)",
			drivers:    []string{},
			hwDrivers:  []string{"virtio-pci", ""},
			interfaces: []string{"lo/loopback"},
			netdevices: "not set",
		},
		{
			name:       "Debian's kernel with virtio_net loaded",
			sys:        fakeSys{netDriver: "virtio_net", ifaces: []string{"eth0"}, classNet: eth0},
			summary:    "present: virtio_net (eth0) (no /proc/config.gz)",
			drivers:    []string{"virtio_net"},
			hwDrivers:  []string{"virtio-pci", "virtio_net"},
			interfaces: []string{"eth0/device/virtio_net", "lo/loopback"},
		},
		{
			name:       "the interface moved to another namespace",
			sys:        fakeSys{config: "netdevices.config", netDriver: "virtio_net", ifaces: []string{}},
			summary:    "present: virtio_net (virtio/virtio0, its interface in another namespace) (CONFIG_NETDEVICES=y: the kernel has network card drivers)",
			drivers:    []string{"virtio_net"},
			hwDrivers:  []string{"virtio-pci", "virtio_net"},
			interfaces: []string{"lo/loopback"},
			netdevices: "y",
		},
		{
			name:       "a kernel with drivers, none bound",
			sys:        fakeSys{config: "netdevices.config"},
			summary:    "none in use (CONFIG_NETDEVICES=y: the kernel has network card drivers; no net devices besides lo)",
			drivers:    []string{},
			hwDrivers:  []string{"virtio-pci", ""},
			interfaces: []string{"lo/loopback"},
			netdevices: "y",
		},
		{
			name:       "a virtual interface",
			sys:        fakeSys{config: "kwyre.config", classNet: map[string]string{"dummy0": "virtual/net/dummy0"}},
			summary:    "present: virtual interface dummy0 (CONFIG_NETDEVICES not set)",
			drivers:    []string{},
			hwDrivers:  []string{"virtio-pci", ""},
			interfaces: []string{"dummy0/virtual", "lo/loopback"},
			netdevices: "not set",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proc, sys := tc.sys.write(t)
			n := ReadNetworkKernel(proc, sys)
			if n.Summary() != tc.summary {
				t.Errorf("summary\n got %q\nwant %q", n.Summary(), tc.summary)
			}
			if !reflect.DeepEqual(n.Drivers, tc.drivers) {
				t.Errorf("drivers %q, want %q", n.Drivers, tc.drivers)
			}
			var hw []string
			for _, h := range n.Hardware {
				hw = append(hw, h.Driver)
			}
			if !reflect.DeepEqual(hw, tc.hwDrivers) {
				t.Errorf("hardware %+v, want drivers %q", n.Hardware, tc.hwDrivers)
			}
			var ifs []string
			for _, i := range n.Interfaces {
				ifs = append(ifs, strings.TrimSuffix(i.Name+"/"+i.Kind+"/"+i.Driver, "/"))
			}
			if !reflect.DeepEqual(ifs, tc.interfaces) {
				t.Errorf("interfaces %q, want %q", ifs, tc.interfaces)
			}
			if got := n.Config["CONFIG_NETDEVICES"]; got != tc.netdevices {
				t.Errorf("CONFIG_NETDEVICES %q, want %q", got, tc.netdevices)
			}
			if tc.sys.config == "" && !strings.HasPrefix(n.ConfigSource, "none") {
				t.Errorf("config source %q without /proc/config.gz", n.ConfigSource)
			}
			if len(n.Errors) > 0 {
				t.Errorf("errors: %v", n.Errors)
			}
		})
	}
}

func TestReadNetworkKernelUnreadable(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "config.gz"), []byte("not gzip"), 0o644)
	n := ReadNetworkKernel(root, filepath.Join(root, "nosys"))
	if !strings.HasPrefix(n.Summary(), "unknown (") || !strings.Contains(n.Summary(), "config.gz unreadable") {
		t.Errorf("summary %q, want unknown with the config unreadable", n.Summary())
	}
	if !strings.HasPrefix(n.ConfigSource, "unreadable") {
		t.Errorf("config source %q", n.ConfigSource)
	}
}

func TestParseKernelConfig(t *testing.T) {
	in := "# CONFIG_NETDEVICES is not set\nCONFIG_BT=m\nCONFIG_LOCALVERSION=\"-kwyre\"\nCONFIG_NETDEVICES_X=y\n"
	got, err := parseKernelConfig(strings.NewReader(in), []string{"CONFIG_NETDEVICES", "CONFIG_BT", "CONFIG_LOCALVERSION", "CONFIG_WLAN"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"CONFIG_NETDEVICES": "not set", "CONFIG_BT": "m", "CONFIG_LOCALVERSION": "-kwyre", "CONFIG_WLAN": "not set"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseKernelConfig(strings.NewReader(""), nil); err == nil {
		t.Error("empty config accepted")
	}
}

// TestReadNetworkKernelHost reads this machine's own kernel: loopback is
// always there, and nothing fails.
func TestReadNetworkKernelHost(t *testing.T) {
	if _, err := os.Stat("/sys/class/net/lo"); err != nil {
		t.Skip("no sysfs")
	}
	n := ReadNetworkKernel("/proc", "/sys")
	var lo bool
	for _, i := range n.Interfaces {
		lo = lo || i.Kind == "loopback"
	}
	if !lo || len(n.Errors) > 0 {
		t.Errorf("host: %+v", n)
	}
	t.Logf("host: %s", n.Summary())
}
