package api

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// NetworkKernel is what the running kernel says about network drivers,
// read at every /audit request from procfs and sysfs (never from init,
// never a constant):
//
//   - the kernel's own configuration (/proc/config.gz, IKCONFIG_PROC):
//     whether it was built with network device drivers at all;
//   - the network interfaces in /sys/class/net. Init mounts /sys in the
//     root network namespace before it creates the services' namespace, and
//     sysfs shows the namespace it was mounted in, so this is the root
//     namespace's list, where every network card appears;
//   - every device on a bus that has a network interface (a "net" folder
//     under it in /sys/bus/*/devices/*), with its driver. That folder
//     exists whatever namespace the interface was moved to, so a card
//     cannot hide from this list by moving;
//   - the network hardware the buses report (PCI network controllers,
//     virtio network devices) and the driver bound to each, if any: a card
//     that is there with no driver is the kernel having none for it.
type NetworkKernel struct {
	ConfigSource string            `json:"config_source"`    // "/proc/config.gz", or why there is none
	Config       map[string]string `json:"config,omitempty"` // network options: "y", "m" or "not set"
	Drivers      []string          `json:"drivers"`          // drivers behind a network interface
	Interfaces   []NetInterface    `json:"interfaces"`       // /sys/class/net
	Devices      []NetDevice       `json:"devices"`          // bus devices with a network interface
	Hardware     []NetHardware     `json:"hardware"`         // network hardware on the buses
	Errors       []string          `json:"errors,omitempty"` // what could not be read
	summary      string
	configNote   string // the configuration's part of the summary when there is none
}

// NetInterface is one entry of /sys/class/net.
type NetInterface struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`             // loopback | device | virtual
	Driver string `json:"driver,omitempty"` // the bound driver of a device's interface
}

// NetDevice is a bus device with a network interface.
type NetDevice struct {
	Device     string   `json:"device"` // bus/name, e.g. virtio/virtio1
	Driver     string   `json:"driver"`
	Interfaces []string `json:"interfaces"` // names visible in this namespace (may be none)
}

// NetHardware is a network function a bus reports.
type NetHardware struct {
	Device string `json:"device"` // bus/name, e.g. pci/0000:00:02.0
	What   string `json:"what"`
	Driver string `json:"driver"` // "" = none bound
}

// networkConfigOptions are the configuration options reported: network
// device drivers, and the channels outside NETDEVICES a kernel can talk
// through.
var networkConfigOptions = []string{
	"CONFIG_NETDEVICES", "CONFIG_WLAN", "CONFIG_WIRELESS", "CONFIG_BT", "CONFIG_NFC",
	"CONFIG_CAN", "CONFIG_USB_NET_DRIVERS", "CONFIG_PACKET", "CONFIG_VSOCKETS",
}

// Summary is the one-line answer for security_controls.network_drivers.
func (n NetworkKernel) Summary() string { return n.summary }

// ReadNetworkKernel reads the network evidence from procfs and sysfs
// mounted at procRoot and sysRoot.
func ReadNetworkKernel(procRoot, sysRoot string) NetworkKernel {
	n := NetworkKernel{Drivers: []string{}, Interfaces: []NetInterface{}, Devices: []NetDevice{}, Hardware: []NetHardware{}}
	// Named as the appliance mounts it, whatever procRoot is.
	const cfgName = "/proc/config.gz"
	cfg, err := readKernelConfig(filepath.Join(procRoot, "config.gz"), networkConfigOptions)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		n.ConfigSource = "none (no " + cfgName + ")"
		n.configNote = "no " + cfgName
	case err != nil:
		n.ConfigSource = "unreadable (" + err.Error() + ")"
		n.configNote = cfgName + " unreadable"
	default:
		n.ConfigSource = cfgName
		n.Config = cfg
	}
	n.readInterfaces(sysRoot)
	n.readBusDevices(sysRoot)
	n.summary = n.summarize()
	return n
}

// readKernelConfig returns the value of each option in a gzipped kernel
// .config: "y", "m", another value, or "not set" (commented out or absent).
func readKernelConfig(path string, options []string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return parseKernelConfig(zr, options)
}

func parseKernelConfig(r io.Reader, options []string) (map[string]string, error) {
	want := map[string]bool{}
	out := map[string]string{}
	for _, o := range options {
		want[o] = true
		out[o] = "not set"
	}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	lines := 0
	for s.Scan() {
		lines++
		line := strings.TrimSpace(s.Text())
		if k, v, ok := strings.Cut(line, "="); ok && want[k] {
			out[k] = strings.Trim(v, `"`)
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("kernel config: %w", err)
	}
	if lines == 0 {
		return nil, errors.New("kernel config: empty")
	}
	return out, nil
}

// linkBase is the last element of a symlink's target ("" if p is no link).
func linkBase(p string) string {
	t, err := os.Readlink(p)
	if err != nil {
		return ""
	}
	return filepath.Base(t)
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// arphrdLoopback is /sys/class/net/*/type of a loopback interface.
const arphrdLoopback = "772"

func (n *NetworkKernel) readInterfaces(sysRoot string) {
	dir := filepath.Join(sysRoot, "class", "net")
	ents, err := os.ReadDir(dir)
	if err != nil {
		n.Errors = append(n.Errors, fmt.Sprintf("list %s: %v", dir, err))
		return
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		ni := NetInterface{Name: e.Name(), Kind: "virtual"}
		switch {
		case readTrim(filepath.Join(p, "type")) == arphrdLoopback:
			ni.Kind = "loopback"
		case exists(filepath.Join(p, "device")):
			ni.Kind = "device"
			ni.Driver = linkBase(filepath.Join(p, "device", "driver"))
		}
		n.Interfaces = append(n.Interfaces, ni)
	}
}

// virtioNet is the virtio device id of a network card.
const virtioNet = "0x0001"

func (n *NetworkKernel) readBusDevices(sysRoot string) {
	devs, err := filepath.Glob(filepath.Join(sysRoot, "bus", "*", "devices", "*"))
	if err != nil || len(devs) == 0 {
		n.Errors = append(n.Errors, fmt.Sprintf("no devices under %s", filepath.Join(sysRoot, "bus")))
		return
	}
	sort.Strings(devs)
	for _, p := range devs {
		bus := filepath.Base(filepath.Dir(filepath.Dir(p)))
		name := bus + "/" + filepath.Base(p)
		driver := linkBase(filepath.Join(p, "driver"))
		if ents, err := os.ReadDir(filepath.Join(p, "net")); err == nil {
			d := NetDevice{Device: name, Driver: driver, Interfaces: []string{}}
			for _, e := range ents {
				d.Interfaces = append(d.Interfaces, e.Name())
			}
			n.Devices = append(n.Devices, d)
		}
		switch bus {
		case "pci":
			// Class 0x02xxxx: network controller (Ethernet, Wi-Fi, ...).
			if class := readTrim(filepath.Join(p, "class")); strings.HasPrefix(class, "0x02") {
				n.Hardware = append(n.Hardware, NetHardware{Device: name, What: "PCI network controller " + class, Driver: driver})
			}
		case "virtio":
			if readTrim(filepath.Join(p, "device")) == virtioNet {
				n.Hardware = append(n.Hardware, NetHardware{Device: name, What: "virtio network device", Driver: driver})
			}
		}
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// summarize writes the one-line verdict: "none (...)" only when no
// interface but loopback and no bus device with an interface exist.
func (n *NetworkKernel) summarize() string {
	var present []string
	seen, drivers := map[string]bool{}, map[string]bool{}
	add := func(what, driver string) {
		if driver != "" && !drivers[driver] {
			drivers[driver] = true
			n.Drivers = append(n.Drivers, driver)
		}
		if !seen[what] {
			seen[what] = true
			present = append(present, what)
		}
	}
	for _, d := range n.Devices {
		drv := orNone(d.Driver, "unknown driver")
		if len(d.Interfaces) > 0 {
			add(fmt.Sprintf("%s (%s)", drv, strings.Join(d.Interfaces, ", ")), drv)
		} else {
			add(fmt.Sprintf("%s (%s, its interface in another namespace)", drv, d.Device), drv)
		}
	}
	for _, i := range n.Interfaces {
		if i.Kind == "loopback" || n.interfaceOnBus(i.Name) {
			continue
		}
		if i.Kind == "device" {
			add(fmt.Sprintf("%s (%s)", orNone(i.Driver, "unknown driver"), i.Name), i.Driver)
		} else {
			add("virtual interface "+i.Name, "")
		}
	}
	var cfg string
	switch v := n.Config["CONFIG_NETDEVICES"]; {
	case n.Config == nil:
		cfg = n.configNote
	case v == "not set":
		cfg = "CONFIG_NETDEVICES not set"
	default:
		cfg = "CONFIG_NETDEVICES=" + v + ": the kernel has network card drivers"
	}
	if len(n.Errors) > 0 {
		return "unknown (" + strings.Join(n.Errors, "; ") + "; " + cfg + ")"
	}
	if len(present) > 0 {
		return "present: " + strings.Join(present, ", ") + " (" + cfg + ")"
	}
	if n.Config == nil || n.Config["CONFIG_NETDEVICES"] != "not set" {
		return "none in use (" + cfg + "; no net devices besides lo)"
	}
	return "none (" + cfg + "; no net devices besides lo)"
}

// interfaceOnBus reports whether a bus device listed the interface.
func (n *NetworkKernel) interfaceOnBus(name string) bool {
	for _, d := range n.Devices {
		for _, i := range d.Interfaces {
			if i == name {
				return true
			}
		}
	}
	return false
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}
