// Package netguard keeps the appliance off the network (layer L2): only the
// loopback link is up, every other link is forced down the moment it
// appears or comes up, and the services run in a network namespace of their
// own that holds nothing but its own loopback.
package netguard

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SetupLoopback brings lo up with 127.0.0.1/8 and ::1/128 in the namespace
// of h. A kernel without IPv6 is not an error; the returned note says so.
func SetupLoopback(h *netlink.Handle) (note string, err error) {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return "", fmt.Errorf("find lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return "", fmt.Errorf("set lo up: %w", err)
	}
	v4 := &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(127, 0, 0, 1), Mask: net.CIDRMask(8, 32)}}
	if err := h.AddrReplace(lo, v4); err != nil {
		return "", fmt.Errorf("add 127.0.0.1/8 to lo: %w", err)
	}
	v6 := &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)}}
	if err := h.AddrReplace(lo, v6); err != nil {
		if errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EACCES) {
			return "no IPv6 in this kernel: lo has 127.0.0.1/8 only", nil
		}
		return "", fmt.Errorf("add ::1/128 to lo: %w", err)
	}
	return "", nil
}

// DownOthers sets every link but lo down and returns the names of those
// that were up.
func DownOthers(h *netlink.Handle) ([]string, error) {
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var downed []string
	var errs []error
	for _, l := range links {
		a := l.Attrs()
		if isLoopback(a) {
			continue
		}
		if a.Flags&net.FlagUp == 0 && a.RawFlags&unix.IFF_UP == 0 {
			continue
		}
		if err := h.LinkSetDown(l); err != nil {
			errs = append(errs, fmt.Errorf("set %s down: %w", a.Name, err))
			continue
		}
		downed = append(downed, a.Name)
	}
	return downed, errors.Join(errs...)
}

// isLoopback: lo is the link named "lo" with the loopback flag. A link
// cannot be renamed to "lo", since lo always exists in a namespace.
func isLoopback(a *netlink.LinkAttrs) bool {
	return a.Name == "lo" && a.RawFlags&unix.IFF_LOOPBACK != 0
}
