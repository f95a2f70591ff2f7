package scan

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
)

// A veth end brought up inside a namespace the test creates is found; so is
// the other end once it is up in the watchdog's own namespace.
func TestLinksVethInNetns(t *testing.T) {
	requireRoot(t)
	c := startHelper(t, "wait", syscall.CLONE_NEWNET)
	pid := c.cmd.Process.Pid
	host, peer := vethInto(t, pid, "", true)
	ns := fmt.Sprintf("netns %d", netnsInode(t, pid))

	got, err := Links{}.Scan(newEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(matching(got, "link "+peer+" is up", ns)) != 1 {
		t.Errorf("up link %s in %s not found: %v", peer, ns, got)
	}
	if f := matching(got, "link "+host+" "); len(f) != 0 {
		t.Errorf("down link %s reported: %v", host, f)
	}
	if f := matching(got, "link lo "); len(f) != 0 {
		t.Errorf("loopback reported: %v", f)
	}

	hl, err := netlink.LinkByName(host)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(hl); err != nil {
		t.Fatal(err)
	}
	got, err = Links{}.Scan(newEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	self, err := newEnv(t).SelfNetNS()
	if err != nil {
		t.Fatal(err)
	}
	if len(matching(got, "link "+host+" is up", fmt.Sprintf("netns %d", self))) != 1 {
		t.Errorf("up link %s in our own namespace not found: %v", host, got)
	}
}

// The procfs reading, used when the watchdog may not enter a namespace, sees
// the same up and down states.
func TestProcNetUp(t *testing.T) {
	requireRoot(t)
	c := startHelper(t, "wait", syscall.CLONE_NEWNET)
	pid := c.cmd.Process.Pid
	_, peer := vethInto(t, pid, "", false)
	dir := fmt.Sprintf("/proc/%d/net", pid)
	h := nsHandle(t, pid)
	pl, err := h.LinkByName(peer)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		up   bool
		want bool
	}{{false, false}, {true, true}, {false, false}} {
		set := h.LinkSetDown
		if step.up {
			set = h.LinkSetUp
		}
		if err := set(pl); err != nil {
			t.Fatal(err)
		}
		up, err := ProcNetUp(dir)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, l := range up {
			if l.name == "lo" {
				t.Errorf("lo reported: %v", up)
			}
			found = found || l.name == peer
		}
		if found != step.want {
			t.Errorf("link %s set up=%v: ProcNetUp says up=%v (%v)", peer, step.up, found, up)
		}
	}
}
