package scan

import (
	"fmt"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// vethInto creates a veth pair whose peer end lives in pid's network namespace
// (created by the test with CLONE_NEWNET), gives the peer cidr ("" = none),
// brings lo and, when up is set, the peer up there. It returns the two names.
func vethInto(t *testing.T, pid int, cidr string, up bool) (host, peer string) {
	t.Helper()
	host = fmt.Sprintf("kwh%d", pid%1000000)
	peer = fmt.Sprintf("kwp%d", pid%1000000)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host}, PeerName: peer}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s: %v", host, err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(host); err == nil {
			netlink.LinkDel(l)
		}
	})
	pl, err := netlink.LinkByName(peer)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetNsPid(pl, pid); err != nil {
		t.Fatalf("move %s to pid %d's netns: %v", peer, pid, err)
	}
	h := nsHandle(t, pid)
	pl, err = h.LinkByName(peer)
	if err != nil {
		t.Fatal(err)
	}
	if cidr != "" {
		a, err := netlink.ParseAddr(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AddrAdd(pl, a); err != nil {
			t.Fatalf("add %s to %s: %v", cidr, peer, err)
		}
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	if up {
		if err := h.LinkSetUp(pl); err != nil {
			t.Fatal(err)
		}
	}
	return host, peer
}

// nsHandle is a netlink handle inside pid's network namespace.
func nsHandle(t *testing.T, pid int) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func netnsInode(t *testing.T, pid int) uint64 {
	t.Helper()
	ino, err := nsInode(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		t.Fatal(err)
	}
	return ino
}
