package qa

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kwyre/kwyre/services/console/linemode"
)

var (
	pulledRE  = regexp.MustCompile(`kwyre-init: \[intrusion\] boot-medium: boot medium (\S+) (was removed|is gone)[^\n]*\n`)
	poweredRE = regexp.MustCompile(`intrusion confirmed by the watchdog: boot-medium`)
)

// TestBootMediumPulled boots the image under test from a USB stick (the
// way the appliance boots on a laptop: run-qemu.sh KWYRE_DISK=usb), waits
// for the chat, then pulls the stick through QMP's device_del. The kernel
// sends a "remove" uevent for the disk and its partitions; the watchdog
// (-boot-device partname:kwyre-esp) confirms at once, init reports the
// intrusion on the console and powers off: QEMU must exit by itself.
func TestBootMediumPulled(t *testing.T) {
	dir := imageDir(t)
	vm := boot(t, filepath.Join(dir, "kwyre.img"), BootOptions{Env: []string{"KWYRE_DISK=usb"}})
	if _, err := vm.Expect(readyRE, bootTimeout); err != nil {
		t.Fatalf("boot from USB: %v", err)
	}
	t.Logf("boot to %q from a USB stick: %.1fs", linemode.Ready, vm.Since().Seconds())
	if _, err := vm.Expect(youRE, time.Minute); err != nil {
		t.Fatalf("first prompt: %v", err)
	}
	// Only a watchdog that found the stick is still running now: with
	// -boot-device and no such disk it fails, and init powers off.
	if vm.Exited() || strings.Contains(vm.Output(), "kwyre-init: [intrusion]") {
		t.Fatalf("the appliance stopped before the stick was pulled:\n%s", vm.Tail(3000))
	}

	pulled := time.Now()
	if _, err := vm.MonitorArgs("device_del", map[string]any{"id": "bootdisk"}); err != nil {
		t.Fatalf("device_del: %v", err)
	}
	m, err := vm.Expect(pulledRE, 2*time.Minute)
	if err != nil {
		t.Fatalf("no boot-medium intrusion report after the stick was pulled: %v", err)
	}
	t.Logf("stick pulled; %.1fs later: %s", time.Since(pulled).Seconds(), strings.TrimSpace(m[0]))
	if err := vm.Wait(offTimeout); err != nil {
		t.Fatalf("power-off after the stick was pulled: %v", err)
	}
	t.Logf("stick pulled to QEMU exit: %.1fs", time.Since(pulled).Seconds())
	if !poweredRE.MatchString(vm.Output()) {
		t.Errorf("init did not name the intrusion as the power-off reason:\n%s", vm.Tail(3000))
	}
}
