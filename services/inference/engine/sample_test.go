package engine

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// wantTopP is the reference: softmax(x/temp) in float64, sorted, cut where
// the cumulative probability first reaches topP. It returns each kept
// token's probability renormalized over the kept set.
func wantTopP(x []float32, temp, topP float64) map[int]float64 {
	idx := make([]int, 0, len(x))
	for i, v := range x {
		if !math.IsNaN(float64(v)) && !math.IsInf(float64(v), -1) {
			idx = append(idx, i)
		}
	}
	sort.Slice(idx, func(a, b int) bool { return x[idx[a]] > x[idx[b]] })
	m := float64(x[idx[0]])
	w := make([]float64, len(idx))
	sum := 0.0
	for k, i := range idx {
		w[k] = math.Exp((float64(x[i]) - m) / temp)
		sum += w[k]
	}
	kept, cum := map[int]float64{}, 0.0
	for k, i := range idx {
		kept[i] = w[k]
		cum += w[k]
		if topP > 0 && topP < 1 && cum >= topP*sum {
			break
		}
	}
	for i := range kept {
		kept[i] /= cum
	}
	return kept
}

func TestDrawMatchesTopPDistribution(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, 64)
	for i := range x {
		x[i] = float32(3 * r.NormFloat64())
	}
	x[5], x[9] = float32(math.NaN()), float32(math.Inf(-1))
	for _, c := range []struct{ temp, topP float64 }{{0.7, 0.9}, {1, 0.5}, {1.5, 1}, {0.3, 0.95}} {
		want := wantTopP(x, c.temp, c.topP)
		d := newDrawer(float32(c.temp), float32(c.topP), 7, len(x))
		const n = 200000
		got := map[int]int{}
		for i := 0; i < n; i++ {
			tok, kept := d.drawKept(x)
			if kept != len(want) {
				t.Fatalf("temp %v top-p %v: kept %d tokens, want %d", c.temp, c.topP, kept, len(want))
			}
			got[tok]++
		}
		d.free()
		for tok, cnt := range got {
			if _, ok := want[tok]; !ok {
				t.Errorf("temp %v top-p %v: drew token %d (logit %v) %d times, outside the kept set", c.temp, c.topP, tok, x[tok], cnt)
			}
		}
		for tok, p := range want {
			// Within 5 standard deviations of a binomial count (and 30 for tiny p).
			mean, sd := n*p, math.Sqrt(n*p*(1-p))
			if diff := math.Abs(float64(got[tok]) - mean); diff > 5*sd+30 {
				t.Errorf("temp %v top-p %v: token %d drawn %d times, want about %.0f", c.temp, c.topP, tok, got[tok], mean)
			}
		}
	}
}

// Over a full Llama 3 vocabulary the kept set is the reference's, give or
// take the boundary token that float sums may place either side.
func TestDrawKeptSetLargeVocab(t *testing.T) {
	for _, peaked := range []bool{false, true} {
		x := testLogits(peaked, 5)
		for _, c := range []struct{ temp, topP float64 }{{0.8, 0.95}, {1, 0.5}, {0.5, 0.99}, {2, 0.9}} {
			want := len(wantTopP(x, c.temp, c.topP))
			d := newDrawer(float32(c.temp), float32(c.topP), 1, len(x))
			tok, kept := d.drawKept(x)
			d.free()
			if kept < want-2 || kept > want+2 {
				t.Errorf("peaked %v temp %v top-p %v: kept %d tokens, want %d", peaked, c.temp, c.topP, kept, want)
			}
			if tok < 0 || tok >= len(x) {
				t.Errorf("peaked %v temp %v top-p %v: drew %d", peaked, c.temp, c.topP, tok)
			}
		}
	}
}

func TestDrawEdgeCases(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	cases := []struct {
		name string
		x    []float32
		want []int // any of these
	}{
		{"one finite among NaN and -inf", []float32{nan, float32(math.Inf(-1)), 2, nan}, []int{2}},
		{"+inf wins", []float32{1, inf, 3}, []int{1}},
		{"all NaN", []float32{nan, nan}, []int{-1}},
		{"equal logits", []float32{1, 1, 1, 1}, []int{0, 1, 2, 3}},
		{"odd length tail", slices.Repeat([]float32{-50}, 37), nil},
	}
	for _, c := range cases {
		d := newDrawer(0.8, 0.95, 1, len(c.x))
		for i := 0; i < 50; i++ {
			tok := d.draw(c.x)
			if c.want == nil {
				if tok < 0 || tok >= len(c.x) {
					t.Errorf("%s: drew %d", c.name, tok)
				}
			} else if !slices.Contains(c.want, tok) {
				t.Errorf("%s: drew %d, want one of %v", c.name, tok, c.want)
			}
		}
		d.free()
	}
	// A very low temperature is greedy in effect.
	x := testLogits(false, 9)
	d := newDrawer(1e-4, 0.95, 1, len(x))
	defer d.free()
	if tok, want := d.draw(x), argmax(x); tok != want {
		t.Errorf("temperature 1e-4: drew %d, want the argmax %d", tok, want)
	}
}
