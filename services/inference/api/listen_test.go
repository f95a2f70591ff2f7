package api

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// hostsTable answers lookups from a fixed table, standing in for DNS, which
// tests may not reach.
type hostsTable map[string][]string

func (h hostsTable) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	addrs, ok := h[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	var out []netip.Addr
	for _, a := range addrs {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

func TestResolveLoopback(t *testing.T) {
	hosts := hostsTable{
		"localhost":     {"::1", "127.0.0.1"},
		"loop6":         {"::1"},
		"rebind":        {"127.0.0.1", "192.168.1.20"},
		"lan":           {"10.1.2.3"},
		"empty-answers": {},
	}
	tests := []struct {
		addr    string
		want    string // "" = refused
		errPart string
	}{
		{"127.0.0.1:8000", "127.0.0.1:8000", ""},
		{"127.0.0.2:0", "127.0.0.2:0", ""},
		{"[::1]:8000", "[::1]:8000", ""},
		{"localhost:8000", "127.0.0.1:8000", ""},
		{"loop6:8000", "[::1]:8000", ""},
		{"[::ffff:127.0.0.1]:9", "127.0.0.1:9", ""},
		{"0.0.0.0:8000", "", "every interface"},
		{"[::]:8000", "", "every interface"},
		{":8000", "", "every interface"},
		{"192.168.1.5:8000", "", "not a loopback"},
		{"10.0.0.1:8000", "", "not a loopback"},
		{"[fe80::1]:8000", "", "not a loopback"},
		{"lan:8000", "", "resolves to 10.1.2.3"},
		{"rebind:8000", "", "resolves to 192.168.1.20"},
		{"empty-answers:8000", "", "no address"},
		{"unknown.invalid:8000", "", "resolve"},
		{"127.0.0.1", "", "missing port"},
		{"127.0.0.1:http-alt-nonsense", "", "bad port"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got, err := ResolveLoopback(context.Background(), tt.addr, hosts)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("accepted, bound %s", got)
				}
				if !strings.Contains(err.Error(), tt.errPart) {
					t.Fatalf("error %q does not say %q", err, tt.errPart)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if got.String() != tt.want {
				t.Fatalf("bound %s, want %s", got, tt.want)
			}
		})
	}
}

func TestListenLoopbackBinds(t *testing.T) {
	ln, err := ListenLoopback(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if !strings.HasPrefix(ln.Addr().String(), "127.0.0.1:") {
		t.Fatalf("bound %s", ln.Addr())
	}
	if _, err := ListenLoopback(context.Background(), "0.0.0.0:0"); err == nil {
		t.Fatal("0.0.0.0 accepted")
	}
}
