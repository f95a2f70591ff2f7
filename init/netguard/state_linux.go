package netguard

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link is one link as the kernel reports it.
type Link struct {
	Name  string
	Index int
	Up    bool   // administratively up (IFF_UP)
	Oper  string // operational state: "up", "down", "unknown", ...
	Loop  bool   // the namespace's own lo
	Addrs int    // number of addresses on it
}

func (l Link) String() string {
	state := "down"
	if l.Up {
		state = "up"
	}
	return fmt.Sprintf("%s %s", l.Name, state)
}

// Links lists the links in h's namespace, by index (lo first).
func Links(h *netlink.Handle) ([]Link, error) {
	ls, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	out := make([]Link, 0, len(ls))
	for _, l := range ls {
		a := l.Attrs()
		addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", a.Name, err)
		}
		out = append(out, Link{
			Name:  a.Name,
			Index: a.Index,
			Up:    a.RawFlags&unix.IFF_UP != 0,
			Oper:  a.OperState.String(),
			Loop:  isLoopback(a),
			Addrs: len(addrs),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

// UpOthers returns the names of the links other than lo that are up.
func UpOthers(ls []Link) []string {
	var up []string
	for _, l := range ls {
		if !l.Loop && l.Up {
			up = append(up, l.Name)
		}
	}
	return up
}

// Describe lists the links on one line: "lo up, eth0 down".
func Describe(ls []Link) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.String()
	}
	return strings.Join(parts, ", ")
}

// CheckLoopbackOnly lists h's links and fails if one other than lo is up.
// A link seen up is looked at again, tries times wait apart, before that
// counts: the guard (Watch) sets such a link down within milliseconds, so
// only a link it cannot hold down fails the check.
func CheckLoopbackOnly(h *netlink.Handle, tries int, wait time.Duration) ([]Link, error) {
	for i := 0; ; i++ {
		ls, err := Links(h)
		if err != nil {
			return nil, err
		}
		up := UpOthers(ls)
		if len(up) == 0 {
			return ls, nil
		}
		if i+1 >= tries {
			return ls, fmt.Errorf("links up besides lo after %v: %s", time.Duration(tries-1)*wait, strings.Join(up, " "))
		}
		time.Sleep(wait)
	}
}
