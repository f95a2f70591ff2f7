package steps

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	boom := errors.New("boom")
	ran := []string{}
	step := func(name, note string, err error) Step {
		return Step{Name: name, Run: func() (string, error) { ran = append(ran, name); return note, err }}
	}
	tests := []struct {
		name    string
		steps   []Step
		wantRan string
		wantOut []string // regexps, one per line
		wantErr string
	}{
		{"all ok", []Step{step("a", "", nil), step("b", "2 links down", nil)}, "a,b",
			[]string{`^kwyre-init: \[ok\] a \([0-9.]+[µnm]?s\)$`, `^kwyre-init: \[ok\] b \([0-9.]+[µnm]?s\): 2 links down$`}, ""},
		{"stops at failure", []Step{step("a", "", nil), step("b", "", boom), step("c", "", nil)}, "a,b",
			[]string{`\[ok\] a`, `^kwyre-init: \[FAIL\] b \([0-9.]+[µnm]?s\): boom$`}, "b: boom"},
		{"panic is a failure", []Step{{Name: "p", Run: func() (string, error) { ran = append(ran, "p"); panic("oops") }}, step("c", "", nil)}, "p",
			[]string{`\[FAIL\] p \(.*\): panic: oops`}, "p: panic: oops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran = ran[:0]
			var out bytes.Buffer
			err := Run(&out, tt.steps)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.HasPrefix(err.Error(), tt.wantErr)) {
				t.Fatalf("Run = %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr == "b: boom" && !errors.Is(err, boom) {
				t.Error("error does not wrap the step's error")
			}
			if strings.Join(ran, ",") != tt.wantRan {
				t.Errorf("ran %v, want %s", ran, tt.wantRan)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(lines) < len(tt.wantOut) {
				t.Fatalf("output %q", out.String())
			}
			for i, re := range tt.wantOut {
				if !regexp.MustCompile(re).MatchString(lines[i]) {
					t.Errorf("line %d = %q, want /%s/", i, lines[i], re)
				}
			}
		})
	}
}
