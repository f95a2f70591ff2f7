package qa

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var (
	linkReportRE = regexp.MustCompile(`kwyre-init: \[link\] eth0 (appeared; kept down|came up; forced down)`)
	linksRE      = regexp.MustCompile(`kwyre-init: \[ok\] links \([^)]*\): root namespace: ([^;\n]*); services' namespace: ([^\n]*)`)
)

// waitOutput returns the console output once re matches anywhere in it,
// or as it is after timeout.
func waitOutput(vm *VM, re *regexp.Regexp, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		out := vm.Output()
		if re.MatchString(out) || time.Now().After(deadline) || vm.Exited() {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestNICForcedDown is the Debian-kernel path (-kernel-flavour debian):
// it boots with a user-mode virtio NIC whose host port forwards to the
// guest's 127.0.0.1:8000. Debian's kernel only shows the NIC with
// virtio_net loaded, so this image loads it (and, to cover that path in
// the same boot, keeps the model on its read-only partition). The guest
// must come up, init must report the link it forced down, /audit must say
// a network driver is present, and the forwarded port must give no HTTP
// answer.
func TestNICForcedDown(t *testing.T) {
	imageDir(t)
	out := buildImage(t, demoModel(t), append(debianKernel, "-model-partition", "always", "-extra-modules", "virtio_pci,virtio_net")...)
	port := freePort(t)
	nic := fmt.Sprintf("user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:%d-:8000", port)
	vm := boot(t, filepath.Join(out, "kwyre.img"), BootOptions{Args: []string{"-nic", nic}})
	if _, err := vm.Expect(readyRE, bootTimeout); err != nil {
		t.Fatalf("boot: %v", err)
	}
	t.Logf("boot to ready with NIC and model partition: %.1fs", vm.Since().Seconds())
	// init reports each link once as it appears, and after the services
	// start lists the links the kernel has in both namespaces. A missing
	// report with a ready guest has meant a stale bin/ (run make build).
	console := waitOutput(vm, linksRE, 30*time.Second)
	if !linkReportRE.MatchString(console) {
		t.Errorf("init did not report eth0 (want a line matching %q; is bin/kwyre-init current?)", linkReportRE)
	}
	if m := linksRE.FindStringSubmatch(console); m == nil {
		t.Errorf("init did not list the links (want a line matching %q)", linksRE)
	} else {
		t.Logf("links in the guest: root namespace: %s; services' namespace: %s", m[1], m[2])
		if m[1] != "lo up, eth0 down" || m[2] != "lo up" {
			t.Errorf("links: root namespace %q, services' namespace %q; want \"lo up, eth0 down\" and \"lo up\"", m[1], m[2])
		}
	}

	if _, err := vm.Expect(youRE, time.Minute); err != nil {
		t.Fatalf("first prompt: %v", err)
	}
	a := consoleAudit(t, vm)
	t.Logf("/audit network_drivers: %s", a.SecurityControls.NetworkDrivers)
	if !strings.HasPrefix(a.SecurityControls.NetworkDrivers, "present: virtio_net (eth0)") ||
		strings.Join(a.SecurityControls.NetworkKernel.Drivers, ",") != "virtio_net" {
		t.Errorf("/audit network_drivers %q, drivers %v; want virtio_net (eth0) present",
			a.SecurityControls.NetworkDrivers, a.SecurityControls.NetworkKernel.Drivers)
	}

	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
	if err == nil {
		resp.Body.Close()
		t.Errorf("the service answered through the forwarded port: %s", resp.Status)
	} else {
		t.Logf("forwarded port: %v (as it must)", err)
	}

	if _, err := vm.Monitor("system_powerdown"); err != nil {
		t.Fatalf("system_powerdown: %v", err)
	}
	if err := vm.Wait(offTimeout); err != nil {
		t.Fatalf("power-off: %v", err)
	}
}
