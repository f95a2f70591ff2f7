package netguard

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func TestLinksAndCheck(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, h *netlink.Handle) // in a fresh namespace
		describe string
		wantErr  string // "" = the check passes
	}{
		{"lo only", nil, "lo up", ""},
		{"links down", func(t *testing.T, h *netlink.Handle) {
			addVeth(t, h, "v0", "v1", false)
		}, "lo up, v1 down, v0 down", ""},
		{"link up, no guard", func(t *testing.T, h *netlink.Handle) {
			addVeth(t, h, "v0", "v1", true)
		}, "lo up, v1 up, v0 up", "links up besides lo after 20ms: v1 v0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, h := testNS(t)
			if tt.setup != nil {
				tt.setup(t, h)
			}
			ls, err := Links(h)
			if err != nil {
				t.Fatal(err)
			}
			if got := Describe(ls); got != tt.describe {
				t.Errorf("Describe = %q, want %q", got, tt.describe)
			}
			if !ls[0].Loop || ls[0].Name != "lo" || ls[0].Addrs == 0 {
				t.Errorf("first link %+v: want lo with its addresses", ls[0])
			}
			_, err = CheckLoopbackOnly(h, 3, 10*time.Millisecond)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("check: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("check: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// With the guard running, a link brought up is down again by the time the
// check looks a second time.
func TestCheckWithGuard(t *testing.T) {
	ns, h := testNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &reports{}
	if err := Watch(ctx, ns, r.add); err != nil {
		t.Fatal(err)
	}
	addVeth(t, h, "g0", "g1", true)
	ls, err := CheckLoopbackOnly(h, 50, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if got := UpOthers(ls); len(got) != 0 {
		t.Errorf("up besides lo: %v", got)
	}
	if !strings.Contains(Describe(ls), "g0 down") {
		t.Errorf("links: %s", Describe(ls))
	}
}
