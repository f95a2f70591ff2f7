package api

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Resolver looks names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ResolveLoopback checks that addr (host:port) names only loopback
// addresses (layer L1) and returns the address to bind: the IP itself, or
// for a name the loopback IP it resolves to. An empty host, 0.0.0.0, ::, a
// LAN address or a name that resolves to anything but loopback is refused.
func ResolveLoopback(ctx context.Context, addr string, res Resolver) (netip.AddrPort, error) {
	if res == nil {
		res = net.DefaultResolver
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listen address %q: %w", addr, err)
	}
	port, err := net.LookupPort("tcp", portStr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listen address %q: bad port: %w", addr, err)
	}
	if host == "" {
		return netip.AddrPort{}, fmt.Errorf("listen address %q: an empty host means every interface; use 127.0.0.1", addr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := checkLoopback(ip); err != nil {
			return netip.AddrPort{}, fmt.Errorf("listen address %q: %w", addr, err)
		}
		return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := res.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listen address %q: resolve %s: %w", addr, host, err)
	}
	if len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("listen address %q: %s resolves to no address", addr, host)
	}
	var pick netip.Addr
	for _, ip := range ips {
		if err := checkLoopback(ip); err != nil {
			return netip.AddrPort{}, fmt.Errorf("listen address %q: %s resolves to %s: %w", addr, host, ip, err)
		}
		// Prefer IPv4, the address the clients and the Host check expect first.
		if !pick.IsValid() || ip.Unmap().Is4() && !pick.Is4() {
			pick = ip.Unmap()
		}
	}
	return netip.AddrPortFrom(pick, uint16(port)), nil
}

func checkLoopback(ip netip.Addr) error {
	ip = ip.Unmap()
	switch {
	case ip.IsUnspecified():
		return fmt.Errorf("%s means every interface; only loopback is allowed", ip)
	case !ip.IsLoopback():
		return fmt.Errorf("%s is not a loopback address; only loopback is allowed", ip)
	}
	return nil
}

// ListenLoopback resolves addr with ResolveLoopback, listens on it and checks
// the bound address once more.
func ListenLoopback(ctx context.Context, addr string) (net.Listener, error) {
	ap, err := ResolveLoopback(ctx, addr, nil)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", ap.String())
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", ap, err)
	}
	bound, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil || checkLoopback(bound.Addr()) != nil {
		ln.Close()
		return nil, fmt.Errorf("listener bound to %s, not a loopback address", ln.Addr())
	}
	return ln, nil
}
