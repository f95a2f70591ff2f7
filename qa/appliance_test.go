package qa

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kwyre/kwyre/services/console/linemode"
	"github.com/kwyre/kwyre/tools/testmodel"
)

var (
	readyRE = regexp.MustCompile(regexp.QuoteMeta(linemode.Ready))
	youRE   = regexp.MustCompile(regexp.QuoteMeta(linemode.PromptYou))
	// The reply streams after "kwyre> "; the next "you> " marks its end.
	replyRE = regexp.MustCompile(`(?s)` + regexp.QuoteMeta(linemode.PromptKwyre) + `(.*?)\n` + regexp.QuoteMeta(linemode.PromptYou))
	newRE   = regexp.MustCompile(regexp.QuoteMeta(linemode.NewSession))
)

// chat sends one line and returns the streamed reply.
func chat(t *testing.T, vm *VM, line string) string {
	t.Helper()
	if err := vm.Send(line + "\r"); err != nil {
		t.Fatalf("send %q: %v", line, err)
	}
	m, err := vm.Expect(replyRE, replyTimeout)
	if err != nil {
		t.Fatalf("reply to %q: %v", line, err)
	}
	// The serial chat shares /dev/console: init keeps the services' INFO
	// records off it (kwyre.verbose brings them back).
	if strings.Contains(m[1], "level=INFO") {
		t.Errorf("service INFO lines in the serial chat:\n%s", m[1])
	}
	return replyText(m[1])
}

// logLine matches what init copies to the serial console from services.
// ttyS0 is also /dev/console, so a log line can start anywhere, even right
// after the reply's last word before its newline.
var logLine = regexp.MustCompile(`(kwyre-init|inference|watchdog): [^\n]*`)

// replyText drops interleaved log text and blank lines from a captured reply.
func replyText(s string) string {
	var keep []string
	for _, l := range strings.Split(logLine.ReplaceAllString(s, ""), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// auditAnswer is the part of GET /audit the tests read.
type auditAnswer struct {
	SecurityControls struct {
		NetworkBinding string `json:"network_binding"`
		NetworkDrivers string `json:"network_drivers"`
		FreedMemory    string `json:"freed_memory"`
		NetworkKernel  struct {
			ConfigSource string            `json:"config_source"`
			Config       map[string]string `json:"config"`
			Drivers      []string          `json:"drivers"`
			Interfaces   []struct {
				Name, Kind, Driver string
			} `json:"interfaces"`
			Hardware []struct {
				Device, What, Driver string
			} `json:"hardware"`
		} `json:"network_kernel"`
	} `json:"security_controls"`
}

var auditRE = regexp.MustCompile(regexp.QuoteMeta(linemode.AuditPrefix) + `(\{[^\n]*\})\n`)

// consoleAudit types /audit at the console's prompt and returns the
// service's GET /audit answer, which the console prints on one line.
func consoleAudit(t *testing.T, vm *VM) auditAnswer {
	t.Helper()
	if err := vm.Send("/audit\r"); err != nil {
		t.Fatal(err)
	}
	m, err := vm.Expect(auditRE, replyTimeout)
	if err != nil {
		t.Fatalf("/audit: %v", err)
	}
	var a auditAnswer
	if err := json.Unmarshal([]byte(m[1]), &a); err != nil {
		t.Fatalf("/audit printed %q: %v", m[1], err)
	}
	if _, err := vm.Expect(youRE, time.Minute); err != nil {
		t.Fatalf("prompt after /audit: %v", err)
	}
	return a
}

// TestAppliance boots the image under test (make image: Kwyre's kernel)
// once, with a virtio network card attached whose host port forwards to
// the guest's 127.0.0.1:8000, and walks the whole session: ready; init's
// list of links says lo and nothing else in both namespaces; /audit says
// the kernel has no network drivers while the card sits on the bus with
// none bound; nothing answers on the forwarded port; a chat turn with the
// demo model's sentence, /new and a second turn; then system_powerdown
// through QMP ending in a clean power-off (QEMU exits by itself, status 0).
func TestAppliance(t *testing.T) {
	dir := imageDir(t)
	port := freePort(t)
	nic := fmt.Sprintf("user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:%d-:8000", port)
	vm := boot(t, filepath.Join(dir, "kwyre.img"), BootOptions{Args: []string{"-nic", nic}})
	if _, err := vm.Expect(readyRE, bootTimeout); err != nil {
		t.Fatalf("boot: %v", err)
	}
	t.Logf("boot to %q: %.1fs", linemode.Ready, vm.Since().Seconds())
	if _, err := vm.Expect(youRE, time.Minute); err != nil {
		t.Fatalf("first prompt: %v", err)
	}

	if m := linksRE.FindStringSubmatch(waitOutput(vm, linksRE, 30*time.Second)); m == nil {
		t.Errorf("init did not list the links (want a line matching %q)", linksRE)
	} else {
		t.Logf("links in the guest: root namespace: %s; services' namespace: %s", m[1], m[2])
		if m[1] != "lo up" || m[2] != "lo up" {
			t.Errorf("links: root namespace %q, services' namespace %q; want only \"lo up\" in both", m[1], m[2])
		}
	}
	if strings.Contains(vm.Output(), "kwyre-init: [link]") {
		t.Errorf("init reported a link besides lo:\n%s", vm.Tail(3000))
	}

	a := consoleAudit(t, vm)
	nk := a.SecurityControls.NetworkKernel
	t.Logf("/audit network_drivers: %s", a.SecurityControls.NetworkDrivers)
	t.Logf("/audit freed_memory: %s", a.SecurityControls.FreedMemory)
	if !strings.HasPrefix(a.SecurityControls.FreedMemory, "overwritten") {
		t.Errorf("/audit freed_memory = %q: the inference service runs without GODEBUG=clobberfree=1", a.SecurityControls.FreedMemory)
	}
	if want := "none (CONFIG_NETDEVICES not set; no net devices besides lo)"; a.SecurityControls.NetworkDrivers != want {
		t.Errorf("/audit network_drivers = %q, want %q", a.SecurityControls.NetworkDrivers, want)
	}
	if nk.ConfigSource != "/proc/config.gz" || nk.Config["CONFIG_NETDEVICES"] != "not set" || len(nk.Drivers) != 0 {
		t.Errorf("/audit network_kernel: config from %q, CONFIG_NETDEVICES %q, drivers %v", nk.ConfigSource, nk.Config["CONFIG_NETDEVICES"], nk.Drivers)
	}
	if len(nk.Interfaces) != 1 || nk.Interfaces[0].Name != "lo" {
		t.Errorf("/audit interfaces %+v, want lo only", nk.Interfaces)
	}
	// The card is attached: the kernel sees it and has no driver for it.
	var card bool
	for _, h := range nk.Hardware {
		t.Logf("/audit hardware: %s %s, driver %q", h.Device, h.What, h.Driver)
		card = card || (h.What == "virtio network device" && h.Driver == "")
	}
	if !card {
		t.Errorf("/audit lists no driverless virtio network device: %+v", nk.Hardware)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	if resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port)); err == nil {
		resp.Body.Close()
		t.Errorf("the service answered through the forwarded port: %s", resp.Status)
	}

	if got := chat(t, vm, "Hello, who are you?"); got != testmodel.DemoReply {
		t.Errorf("reply = %q, want %q", got, testmodel.DemoReply)
	}

	if err := vm.Send("/new\r"); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Expect(newRE, time.Minute); err != nil {
		t.Fatalf("/new: %v", err)
	}
	if got := chat(t, vm, "And now?"); got != testmodel.DemoReply {
		t.Errorf("reply after /new = %q, want %q", got, testmodel.DemoReply)
	}

	sent := time.Now()
	if _, err := vm.Monitor("system_powerdown"); err != nil {
		t.Fatalf("system_powerdown: %v", err)
	}
	if err := vm.Wait(offTimeout); err != nil {
		t.Fatalf("power-off after system_powerdown: %v", err)
	}
	t.Logf("power button to QEMU exit: %.1fs", time.Since(sent).Seconds())
	if out := vm.Output(); strings.Contains(out, "Kernel panic") {
		t.Errorf("the guest panicked:\n%s", vm.Tail(2000))
	}
}
