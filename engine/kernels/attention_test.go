// attention_test.go: parity of Attention against the CPU reference: plain,
// causal, key bias, probability columns, both swap modes, odd head dims and
// offsets, cross attention with 77 keys and a long sequence.
package kernels

import (
	"math"
	"testing"

	"harmony/engine/tensor"
)

type attnCase struct {
	name         string
	b, nq, nk, h int
	dk, dv       int
	qOff, kOff   int // element offsets of the q and k views (v follows kOff)
	causal       bool
	keyBias      bool // −10000 on a random ~25 % of keys, small noise elsewhere
	probs        [2]int
	swap         tensor.SwapMode
	partner      []int
	scale        float32 // 0: 1/√dk
	qScale       float32 // input amplitude (sharper softmax when larger); 0: 1
}

var attnCases = []attnCase{
	{name: "self small", b: 2, nq: 37, nk: 37, h: 2, dk: 8, dv: 8},
	{name: "cross 77 keys d40", b: 2, nq: 50, nk: 77, h: 3, dk: 40, dv: 40, qScale: 2},
	{name: "causal", b: 2, nq: 45, nk: 45, h: 2, dk: 16, dv: 16, causal: true},
	{name: "key bias padding", b: 2, nq: 20, nk: 77, h: 2, dk: 40, dv: 40, keyBias: true},
	{name: "probs cols", b: 2, nq: 33, nk: 77, h: 3, dk: 8, dv: 8, keyBias: true, probs: [2]int{3, 14}},
	{name: "probs full range causal", b: 1, nq: 29, nk: 29, h: 4, dk: 4, dv: 4, causal: true, probs: [2]int{0, 29}},
	{name: "d not multiple of 4", b: 2, nq: 19, nk: 23, h: 3, dk: 6, dv: 6, probs: [2]int{5, 6}},
	{name: "dk != dv", b: 1, nq: 17, nk: 30, h: 2, dk: 8, dv: 12},
	{name: "odd view offsets", b: 2, nq: 21, nk: 21, h: 2, dk: 8, dv: 8, qOff: 3, kOff: 5, causal: true},
	{name: "one query", b: 1, nq: 1, nk: 77, h: 8, dk: 8, dv: 8},
	{name: "d64", b: 1, nq: 40, nk: 40, h: 2, dk: 64, dv: 64},
	{name: "d80 one chunk", b: 1, nq: 30, nk: 33, h: 2, dk: 80, dv: 80, scale: 0.05},
	{name: "d160 two chunks", b: 1, nq: 25, nk: 25, h: 1, dk: 160, dv: 160},
	{name: "d512 single head, seven chunks", b: 1, nq: 20, nk: 20, h: 1, dk: 512, dv: 512},
	{name: "long sequence", b: 1, nq: 1100, nk: 1100, h: 1, dk: 8, dv: 8, qScale: 2},
	{name: "swap kv", b: 3, nq: 30, nk: 30, h: 2, dk: 8, dv: 8, swap: tensor.SwapKV, partner: []int{1, -1, 0}},
	{name: "swap kv probs keybias", b: 2, nq: 26, nk: 26, h: 2, dk: 12, dv: 12, swap: tensor.SwapKV, partner: []int{1, -1}, keyBias: true, probs: [2]int{0, 26}},
	{name: "swap map", b: 2, nq: 27, nk: 27, h: 2, dk: 8, dv: 8, swap: tensor.SwapMap, partner: []int{1, -1}},
	{name: "swap map causal probs", b: 3, nq: 18, nk: 18, h: 3, dk: 6, dv: 6, swap: tensor.SwapMap, partner: []int{2, 0, -1}, causal: true, probs: [2]int{2, 9}},
}

func runAttention(t *testing.T, p *oracle, tc attnCase) (float64, float64) {
	amp := tc.qScale
	if amp == 0 {
		amp = 1
	}
	q := p.rand("q", tc.qOff, amp, tc.b, tc.nq, tc.h*tc.dk)
	k := p.rand("k", tc.kOff, amp, tc.b, tc.nk, tc.h*tc.dk)
	v := p.rand("v", tc.kOff, 1, tc.b, tc.nk, tc.h*tc.dv)
	scale := tc.scale
	if scale == 0 {
		scale = float32(1 / math.Sqrt(float64(tc.dk)))
	}
	og := tensor.AttnOpts{Heads: tc.h, Scale: scale, Causal: tc.causal, ProbCols: tc.probs}
	oc := og
	if tc.keyBias {
		kb := make([]float32, tc.b*tc.nk)
		for i := range kb {
			kb[i] = 0.1 * (2*p.rng.Float32() - 1)
			if p.rng.Intn(4) == 0 && i%tc.nk != 0 {
				kb[i] = -10000
			}
		}
		x := p.fromF32("keybias", kb, 0, tc.b, tc.nk)
		og.KeyBias, oc.KeyBias = x.g, x.c
	}
	if tc.swap != 0 {
		rm := make([]float32, tc.b*tc.nq)
		for i := range rm {
			if p.rng.Intn(2) == 0 {
				rm[i] = 1
			}
		}
		km := make([]float32, tc.b*tc.nk)
		for i := range km {
			// Key 0 always usable: a swapped row never faces an empty key set.
			if p.rng.Intn(5) < 3 || i%tc.nk == 0 {
				km[i] = 1
			}
		}
		r := p.fromF32("rowmask", rm, 0, tc.b, tc.nq)
		m := p.fromF32("keymask", km, 0, tc.b, tc.nk)
		og.Swap = &tensor.Swap{Mode: tc.swap, Partner: tc.partner, RowMask: r.g, KeyMask: m.g}
		oc.Swap = &tensor.Swap{Mode: tc.swap, Partner: tc.partner, RowMask: r.c, KeyMask: m.c}
	}
	got, gotP := p.g.Attention(q.g, k.g, v.g, og)
	want, wantP := p.c.Attention(q.c, k.c, v.c, oc)
	e := p.check(got, want, denseRel, denseAbs)
	var ep float64
	if (gotP == nil) != (wantP == nil) {
		t.Fatalf("probs %v, reference %v", gotP, wantP)
	}
	if wantP != nil {
		ep = p.check(gotP, wantP, denseRel, denseAbs)
	}
	return e, ep
}

func TestAttentionParity(t *testing.T) {
	t.Parallel()
	p := newOracle(t, false)
	for _, tc := range attnCases {
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			e, ep := runAttention(t, p, tc)
			t.Logf("max err / max|ref|: out %.2g, probs %.2g", e, ep)
		})
	}
}

func TestAttentionDefaultLimits(t *testing.T) {
	t.Parallel()
	p := newOracle(t, true)
	for _, i := range []int{1, 4, 13, 16} {
		tc := attnCases[i]
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			runAttention(t, p, tc)
		})
	}
}
