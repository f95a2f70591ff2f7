package watchdog

import (
	"strings"
	"testing"

	"github.com/kwyre/kwyre/services/watchdog/scan"
)

func TestVerdict(t *testing.T) {
	f := func(scanner, key string) scan.Finding {
		return scan.Finding{Scanner: scanner, Key: key, What: scanner + " " + key}
	}
	now := func(scanner, key string) scan.Finding {
		x := f(scanner, key)
		x.Immediate = true
		return x
	}
	type step struct {
		findings []scan.Finding
		failed   []string
		want     []string // keys confirmed by this scan
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"once is not enough", []step{
			{findings: []scan.Finding{f("tracer", "a")}},
			{},
			{findings: []scan.Finding{f("tracer", "a")}},
		}},
		{"twice in a row confirms, reported once", []step{
			{findings: []scan.Finding{f("tracer", "a")}},
			{findings: []scan.Finding{f("tracer", "a")}, want: []string{"a"}},
			{findings: []scan.Finding{f("tracer", "a")}},
		}},
		{"same key, other scanner is another finding", []step{
			{findings: []scan.Finding{f("tracer", "a")}},
			{findings: []scan.Finding{f("sockets", "a")}},
			{findings: []scan.Finding{f("sockets", "a")}, want: []string{"a"}},
		}},
		{"changing identity never confirms", []step{
			{findings: []scan.Finding{f("processes", "1 gdb")}},
			{findings: []scan.Finding{f("processes", "2 gdb")}},
			{findings: []scan.Finding{f("processes", "3 gdb")}},
		}},
		{"immediate confirms at once", []step{
			{findings: []scan.Finding{now("boot-medium", "sda")}, want: []string{"sda"}},
			{findings: []scan.Finding{now("boot-medium", "sda")}},
		}},
		{"duplicates in one scan count once", []step{
			{findings: []scan.Finding{f("fds", "x"), f("fds", "x")}},
			{findings: []scan.Finding{f("fds", "x"), f("fds", "x")}, want: []string{"x"}},
		}},
		{"a failed scanner carries its findings over", []step{
			{findings: []scan.Finding{f("sockets", "s"), f("links", "l")}},
			{failed: []string{"sockets", "links"}},
			{findings: []scan.Finding{f("sockets", "s")}, want: []string{"s"}},
		}},
		{"a scanner that ran and saw nothing forgets", []step{
			{findings: []scan.Finding{f("sockets", "s")}},
			{failed: []string{"links"}},
			{findings: []scan.Finding{f("sockets", "s")}},
		}},
		{"several at once", []step{
			{findings: []scan.Finding{f("a", "1"), f("b", "2"), f("c", "3")}},
			{findings: []scan.Finding{f("a", "1"), f("c", "3")}, want: []string{"1", "3"}},
			{findings: []scan.Finding{f("b", "2")}},
			{findings: []scan.Finding{f("b", "2")}, want: []string{"2"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := NewVerdict()
			anyWanted := false
			for i, s := range tc.steps {
				failed := map[string]bool{}
				for _, n := range s.failed {
					failed[n] = true
				}
				var keys []string
				for _, c := range v.Observe(s.findings, failed) {
					keys = append(keys, c.Key)
				}
				if strings.Join(keys, ",") != strings.Join(s.want, ",") {
					t.Fatalf("scan %d: confirmed %v, want %v", i+1, keys, s.want)
				}
				anyWanted = anyWanted || len(s.want) > 0
				if v.Triggered() != anyWanted {
					t.Fatalf("scan %d: triggered %v, want %v", i+1, v.Triggered(), anyWanted)
				}
			}
		})
	}
}
