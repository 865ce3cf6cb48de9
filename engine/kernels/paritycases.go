// paritycases.go: the case tables of the kernel parity checks (odd sizes,
// views at odd offsets, both weight types, every epilogue) and the function
// that runs one case against the CPU reference. The tests (*_test.go) and
// RunParity (paritysuite.go, behind `harmony selftest`) run the same tables.
package kernels

import (
	"fmt"
	"math"
	"slices"

	"harmony/engine/tensor"
)

// Tolerance of the f32 paths (f16 weights are compared against the reference
// on the same f16 weights, so the same bound holds).
const (
	denseRel = 1e-5
	denseAbs = 1e-6
)

type linearCase struct {
	name       string
	lead       []int // leading dims of x; rows M = their product
	k, n       int
	wdt        tensor.DType
	xOff, wOff int // element offsets of the x and w views
	bias, res  bool
	act        tensor.Act
	split      int  // Epilogue.Split
	geglu      bool // Epilogue.GEGLU (n is the weight's rows, 2F)
}

var linearCases = []linearCase{
	{name: "square", lead: []int{64}, k: 64, n: 64},
	{name: "odd sizes, scalar K tail", lead: []int{37}, k: 29, n: 23, bias: true, act: tensor.ActSiLU},
	{name: "batch dims, all epilogue", lead: []int{2, 3, 11}, k: 40, n: 70, bias: true, res: true, act: tensor.ActGELU},
	{name: "views at odd offsets", lead: []int{19}, k: 32, n: 66, xOff: 3, wOff: 5, bias: true, act: tensor.ActQuickGELU},
	{name: "leaky relu epilogue", lead: []int{2, 9}, k: 24, n: 13, bias: true, act: tensor.ActLeakyReLU},
	{name: "one row one output", lead: []int{1}, k: 4, n: 1},
	{name: "tall and wide", lead: []int{130}, k: 320, n: 72, bias: true, res: true},
	{name: "f16", lead: []int{33}, k: 64, n: 72, wdt: tensor.F16, bias: true, res: true},
	{name: "f16 gelu", lead: []int{2, 35}, k: 80, n: 130, wdt: tensor.F16, act: tensor.ActGELU},
	{name: "f16 odd offset", lead: []int{21}, k: 36, n: 17, wdt: tensor.F16, wOff: 7, bias: true, act: tensor.ActSiLU},
	{name: "f16 K tail, odd offset", lead: []int{9}, k: 30, n: 40, wdt: tensor.F16, wOff: 1, xOff: 2, res: true},
	{name: "f16 even offset vec", lead: []int{65}, k: 48, n: 65, wdt: tensor.F16, wOff: 4, xOff: 8, act: tensor.ActQuickGELU},
	{name: "f16 octets, wide block", lead: []int{150}, k: 96, n: 200, wdt: tensor.F16, wOff: 8, bias: true, res: true},
	{name: "split qkv", lead: []int{2, 19}, k: 32, n: 96, split: 32},
	{name: "split f16 bias act", lead: []int{23}, k: 40, n: 60, wdt: tensor.F16, split: 20, bias: true, act: tensor.ActSiLU},
	{name: "split odd", lead: []int{7}, k: 13, n: 15, split: 5, xOff: 1},
	{name: "geglu", lead: []int{2, 33}, k: 32, n: 128, geglu: true, bias: true},
	{name: "geglu f16 octets residual", lead: []int{70}, k: 64, n: 80, wdt: tensor.F16, geglu: true, bias: true, res: true},
	{name: "geglu odd", lead: []int{9}, k: 21, n: 26, geglu: true, bias: true, wOff: 3},
	{name: "geglu f16 odd", lead: []int{5}, k: 12, n: 14, wdt: tensor.F16, geglu: true, wOff: 1},
}

func runLinear(p *oracle, tc linearCase) float64 {
	m := tensor.Numel(tc.lead)
	x := p.rand("x", tc.xOff, 1, append(append([]int{}, tc.lead...), tc.k)...)
	w := p.weight("w", tc.wdt, tc.wOff, 0.5, tc.n, tc.k)
	var bias, res *twin
	if tc.bias {
		b := p.rand("b", 1, 0.5, tc.n)
		bias = &b
	}
	on := tc.n
	if tc.geglu {
		on /= 2
	}
	if tc.res {
		r := p.rand("r", 2, 1, m, on)
		res = &r
	}
	bg, bc := bias.sides()
	rg, rc := res.sides()
	got := p.g.Linear(x.g, w.g, bg, tensor.Epilogue{Act: tc.act, Residual: rg, Split: tc.split, GEGLU: tc.geglu})
	want := p.c.Linear(x.c, w.c, bc, tensor.Epilogue{Act: tc.act, Residual: rc, Split: tc.split, GEGLU: tc.geglu})
	if !slices.Equal(got.Shape, want.Shape) {
		p.t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
	}
	return p.check(got, want, denseRel, denseAbs)
}

type convCase struct {
	name        string
	b, h, w, c  int
	o, k        int // output channels, kernel size (square)
	stride, pad int
	wdt         tensor.DType
	xOff, wOff  int
	bias        bool
	chanBias    bool
	res         bool
	upsample    bool
	act         tensor.Act
	cbWide      int // > 0: the channel bias is [b, cbWide], read from column cbCol
	cbCol       int
}

var convCases = []convCase{
	{name: "3x3 s1", b: 2, h: 7, w: 5, c: 8, o: 12, k: 3, stride: 1, pad: 1, bias: true, res: true},
	{name: "3x3 s2 odd channels", b: 1, h: 9, w: 6, c: 6, o: 10, k: 3, stride: 2, pad: 1, bias: true, act: tensor.ActSiLU},
	{name: "3x3 s2 even size", b: 2, h: 8, w: 8, c: 16, o: 70, k: 3, stride: 2, pad: 1, bias: true},
	{name: "1x1 as linear", b: 2, h: 5, w: 3, c: 16, o: 9, k: 1, stride: 1, bias: true, res: true},
	{name: "1x1 chanbias", b: 2, h: 4, w: 3, c: 12, o: 20, k: 1, stride: 1, bias: true, chanBias: true, act: tensor.ActSiLU},
	{name: "patch 14x14 s14", b: 1, h: 28, w: 42, c: 3, o: 16, k: 14, stride: 14},
	{name: "upsample + chanbias", b: 2, h: 4, w: 5, c: 8, o: 11, k: 3, stride: 1, pad: 1, bias: true, chanBias: true, upsample: true},
	{name: "resnet conv2 epilogue", b: 2, h: 6, w: 6, c: 20, o: 20, k: 3, stride: 1, pad: 1, bias: true, chanBias: true, res: true, act: tensor.ActGELU},
	{name: "x view at odd offset", b: 1, h: 5, w: 7, c: 8, o: 5, k: 3, stride: 1, pad: 1, xOff: 3, bias: true, act: tensor.ActQuickGELU},
	{name: "f16 3x3", b: 2, h: 6, w: 5, c: 12, o: 14, k: 3, stride: 1, pad: 1, wdt: tensor.F16, bias: true, res: true},
	{name: "f16 odd offset s2", b: 1, h: 7, w: 7, c: 5, o: 9, k: 3, stride: 2, pad: 1, wdt: tensor.F16, wOff: 3, act: tensor.ActSiLU},
	{name: "f16 upsample", b: 1, h: 3, w: 4, c: 8, o: 8, k: 3, stride: 1, pad: 1, wdt: tensor.F16, wOff: 1, upsample: true, bias: true},
	{name: "f16 1x1 odd offset", b: 1, h: 3, w: 5, c: 10, o: 7, k: 1, stride: 1, wdt: tensor.F16, wOff: 5, bias: true},
	{name: "no padding 3x3", b: 1, h: 6, w: 9, c: 4, o: 66, k: 3, stride: 1, bias: true},
	{name: "wide chanbias column", b: 2, h: 5, w: 4, c: 8, o: 12, k: 3, stride: 1, pad: 1, bias: true, chanBias: true, cbWide: 40, cbCol: 17, res: true},
}

func runConv(p *oracle, tc convCase) float64 {
	x := p.rand("x", tc.xOff, 1, tc.b, tc.h, tc.w, tc.c)
	w := p.weight("w", tc.wdt, tc.wOff, 0.3, tc.o, tc.c, tc.k, tc.k)
	var bias, cb, res *twin
	if tc.bias {
		b := p.rand("b", 1, 0.5, tc.o)
		bias = &b
	}
	if tc.chanBias {
		c := p.rand("cb", 3, 0.5, tc.b, max(tc.o, tc.cbWide))
		cb = &c
	}
	g, err := tensor.ConvDims(x.c, w.c, nil, tensor.ConvOpts{Stride: tc.stride, Pad: tc.pad, Upsample: tc.upsample})
	if err != nil {
		p.t.Fatalf("%v", err)
	}
	if tc.res {
		r := p.rand("r", 2, 1, tc.b, g.OutH, g.OutW, tc.o)
		res = &r
	}
	bg, bc := bias.sides()
	cbg, cbc := cb.sides()
	rg, rc := res.sides()
	og := tensor.ConvOpts{Stride: tc.stride, Pad: tc.pad, Upsample: tc.upsample, ChanBias: cbg, ChanBiasCol: tc.cbCol, Epilogue: tensor.Epilogue{Act: tc.act, Residual: rg}}
	oc := tensor.ConvOpts{Stride: tc.stride, Pad: tc.pad, Upsample: tc.upsample, ChanBias: cbc, ChanBiasCol: tc.cbCol, Epilogue: tensor.Epilogue{Act: tc.act, Residual: rc}}
	got := p.g.Conv2D(x.g, w.g, bg, og)
	want := p.c.Conv2D(x.c, w.c, bc, oc)
	return p.check(got, want, denseRel, denseAbs)
}

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

func runAttention(p *oracle, tc attnCase) (float64, float64) {
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
		p.t.Fatalf("probs %v, reference %v", gotP, wantP)
	}
	if wantP != nil {
		ep = p.check(gotP, wantP, denseRel, denseAbs)
	}
	return e, ep
}

type normCase struct {
	shape    []int   // x
	groups   int     // GroupNorm only
	eps      float32 // variance epsilon
	lo, hi   float32 // input range
	xOff     int     // > 0: x is a view this far into a bigger tensor
	paramOff int     // > 0: gamma and beta are views
}

func (c normCase) String() string {
	return fmt.Sprintf("%v/g%d/eps%g/[%g,%g)/off%d,%d", c.shape, c.groups, c.eps, c.lo, c.hi, c.xOff, c.paramOff)
}

// inputs makes x, gamma, beta for a case.
func (c normCase) inputs(p *parity) (x, g, b pair) {
	ch := c.shape[len(c.shape)-1]
	if c.xOff > 0 {
		x = p.randView(c.xOff, c.lo, c.hi, c.shape...)
	} else {
		x = p.rand(c.lo, c.hi, c.shape...)
	}
	if c.paramOff > 0 {
		g = p.randView(c.paramOff, 0.5, 1.5, ch)
		b = p.randView(c.paramOff+1, -0.5, 0.5, ch)
	} else {
		g = p.rand(0.5, 1.5, ch)
		b = p.rand(-0.5, 0.5, ch)
	}
	return x, g, b
}

var groupNormCases = []normCase{
	{shape: []int{1, 3, 5, 6}, groups: 3, eps: 1e-5, lo: -2, hi: 2},
	{shape: []int{2, 7, 9, 12}, groups: 4, eps: 1e-6, lo: -3, hi: 1, xOff: 13, paramOff: 5},
	{shape: []int{3, 17, 8}, groups: 8, eps: 1e-5, lo: -1, hi: 1},               // one channel per group
	{shape: []int{2, 8, 8, 320}, groups: 32, eps: 1e-5, lo: -2, hi: 2, xOff: 3}, // 6-group blocks, a partial last block
	{shape: []int{1, 5, 5, 256}, groups: 2, eps: 1e-6, lo: -2, hi: 2},           // 128 channels per group
	{shape: []int{2, 3, 3, 600}, groups: 1, eps: 1e-5, lo: -2, hi: 2},           // one group wider than a workgroup
	{shape: []int{1, 40, 40, 12}, groups: 3, eps: 1e-5, lo: 9, hi: 11},          // mean far from zero
	{shape: []int{2, 64, 64, 64}, groups: 32, eps: 1e-6, lo: -3, hi: 3},
	{shape: []int{1, 128, 128, 32}, groups: 32, eps: 1e-6, lo: -1, hi: 2},
	{shape: []int{1, 512, 512, 4}, groups: 1, eps: 1e-6, lo: 3, hi: 5}, // a million elements in one group
}

var layerNormCases = []normCase{
	{shape: []int{7, 32}, eps: 1e-5, lo: -2, hi: 2},
	{shape: []int{3, 5, 33}, eps: 1e-5, lo: -2, hi: 2, xOff: 7, paramOff: 3},
	{shape: []int{13, 64}, eps: 1e-12, lo: -1, hi: 3},
	{shape: []int{2, 77, 320}, eps: 1e-5, lo: -4, hi: 4},
	{shape: []int{300, 768}, eps: 1e-12, lo: -2, hi: 2, xOff: 1},
	{shape: []int{9, 1000}, eps: 1e-5, lo: 9, hi: 11},
	{shape: []int{2, 3, 1024}, eps: 1e-6, lo: -2, hi: 2},
	{shape: []int{5, 2000}, eps: 1e-5, lo: -2, hi: 2},
	{shape: []int{3, 9000}, eps: 1e-5, lo: -2, hi: 2, xOff: 2}, // 256 threads per row
}

// actRanges are input ranges every activation is checked over (the parity
// tolerance scales with max|ref|, so wide ranges are checked on their own).
var actRanges = [][2]float32{{-1, 1}, {-6, 6}, {-20, 20}, {-120, 120}, {-1e4, 1e4}}

type binaryCase struct {
	a, b       []int
	aOff, bOff int
}

var binaryCases = []binaryCase{
	{a: []int{3, 5, 7}, b: []int{3, 5, 7}},
	{a: []int{1031}, b: []int{1031}, aOff: 3, bOff: 1},
	{a: []int{2, 4, 4, 6}, b: []int{}},                    // scalar, rank 0
	{a: []int{2, 4, 4, 6}, b: []int{1}, bOff: 7},          // scalar, rank 1
	{a: []int{2, 5, 7, 6}, b: []int{6}},                   // per channel
	{a: []int{2, 5, 7, 6}, b: []int{2, 1, 1, 6}},          // per batch and channel
	{a: []int{3, 5, 7, 6}, b: []int{5, 1, 1}, aOff: 1},    // middle dim
	{a: []int{3, 5, 7, 6}, b: []int{1, 7, 1}},             // middle dim
	{a: []int{2, 9, 33}, b: []int{2, 1, 33}, bOff: 5},     // per batch
	{a: []int{2, 3, 1, 4, 5, 3}, b: []int{3, 1, 4, 1, 3}}, // 6 dims, alternating
	{a: []int{2, 3, 2, 3, 2, 3, 2, 3}, b: []int{3, 1, 3, 1, 3, 1, 3}},
}

// f16Specials are values whose binary16 rounding is delicate: ties to even,
// overflow, the subnormal range and what underflows.
var f16Specials = []float32{
	0, float32(math.Copysign(0, -1)), 1, -1, 65504, 65519.99, 65520, 70000, -1e9,
	1 + 1.0/2048, 1 + 3.0/2048, 1 + 1.0/2048 + 1.0/65536, // tie to even down, tie up, just above the tie
	6.1035156e-05, 6.0975552e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08, 1e-8, -3e-7,
	float32(math.Inf(1)), float32(math.Inf(-1)),
}

// checkGroupNorm compares GroupNorm with and without the fused SiLU.
func (c normCase) checkGroupNorm(p *parity) {
	x, g, b := c.inputs(p)
	for _, silu := range []bool{false, true} {
		name := fmt.Sprintf("group_norm %v silu=%v", c, silu)
		p.check(name, p.ref.GroupNorm(x.ref, g.ref, b.ref, c.groups, c.eps, silu),
			p.gpu.GroupNorm(x.gpu, g.gpu, b.gpu, c.groups, c.eps, silu), tolRel, tolAbs)
	}
	p.free(x, g, b)
}

// checkLayerNorm compares LayerNorm.
func (c normCase) checkLayerNorm(p *parity) {
	x, g, b := c.inputs(p)
	p.check("layer_norm "+c.String(), p.ref.LayerNorm(x.ref, g.ref, b.ref, c.eps),
		p.gpu.LayerNorm(x.gpu, g.gpu, b.gpu, c.eps), tolRel, tolAbs)
	p.free(x, g, b)
}

// activations are the activations checked over every actRanges entry.
var activations = []tensor.Act{tensor.ActNone, tensor.ActSiLU, tensor.ActGELU, tensor.ActQuickGELU, tensor.ActLeakyReLU}

// checkActivate compares activation a over actRanges[i] (a view for i = 1).
func checkActivate(p *parity, a tensor.Act, i int) {
	r := actRanges[i]
	shape := []int{3, 5, 67 + i} // not a multiple of the workgroup
	x := p.rand(r[0], r[1], shape...)
	if i == 1 {
		x = p.randView(5, r[0], r[1], shape...)
	}
	name := fmt.Sprintf("activate %v %v on [%g, %g)", a, shape, r[0], r[1])
	p.check(name, p.ref.Activate(x.ref, a), p.gpu.Activate(x.gpu, a), tolRel, tolAbs)
	p.free(x)
}

type scaleCase struct {
	shape []int
	s, k  float32
	off   int
}

var scaleCases = []scaleCase{
	{[]int{1}, 2, 0, 0},
	{[]int{7, 131}, 0.18215, 0, 3},
	{[]int{2, 4, 9, 9}, 1 / 0.18215, -1, 0},
	{[]int{4099}, -0.5, 0.5, 1},
}

func (c scaleCase) check(p *parity) {
	x := p.randView(c.off, -4, 4, c.shape...)
	p.check(fmt.Sprintf("scale %v ·%g + %g", c.shape, c.s, c.k), p.ref.Scale(x.ref, c.s, c.k), p.gpu.Scale(x.gpu, c.s, c.k), tolRel, tolAbs)
	p.free(x)
}

type gegluCase struct {
	shape  []int
	lo, hi float32
	off    int
}

var gegluCases = []gegluCase{
	{[]int{1, 2}, -3, 3, 0},
	{[]int{3, 5, 14}, -3, 3, 0},
	{[]int{2, 33, 200}, -8, 8, 9},
	{[]int{2, 64, 2560}, -5, 5, 0},
}

func (c gegluCase) check(p *parity) {
	x := p.randView(c.off, c.lo, c.hi, c.shape...)
	p.check(fmt.Sprintf("geglu %v off %d", c.shape, c.off), p.ref.GEGLU(x.ref), p.gpu.GEGLU(x.gpu), tolRel, tolAbs)
	p.free(x)
}

// check compares Add and Mul.
func (c binaryCase) check(p *parity) {
	a := p.randView(c.aOff, -3, 3, c.a...)
	b := p.randView(c.bOff, -3, 3, c.b...)
	name := fmt.Sprintf("%v ∘ %v off %d,%d", c.a, c.b, c.aOff, c.bOff)
	p.check("add "+name, p.ref.Add(a.ref, b.ref), p.gpu.Add(a.gpu, b.gpu), tolRel, tolAbs)
	p.check("mul "+name, p.ref.Mul(a.ref, b.ref), p.gpu.Mul(a.gpu, b.gpu), tolRel, tolAbs)
	p.free(a, b)
}

type upsampleCase struct {
	shape []int
	off   int
}

var upsampleCases = []upsampleCase{
	{[]int{1, 1, 1, 1}, 0},
	{[]int{2, 3, 5, 7}, 0},
	{[]int{1, 8, 8, 320}, 3},
	{[]int{2, 9, 4, 1}, 1},
}

func (c upsampleCase) check(p *parity) {
	x := p.randView(c.off, -2, 2, c.shape...)
	p.check(fmt.Sprintf("upsample2x %v off %d", c.shape, c.off), p.ref.Upsample2x(x.ref), p.gpu.Upsample2x(x.gpu), 0, 0)
	p.free(x)
}

type concatCase struct {
	axis  int
	parts [][]int
}

var concatCases = []concatCase{
	{-1, [][]int{{2, 3, 4, 5}, {2, 3, 4, 2}, {2, 3, 4, 1}}},
	{-1, [][]int{{2, 3, 4, 5}, {2, 3, 4, 3}}}, // skip connections: channels, one dispatch
	{0, [][]int{{1, 3, 5}, {2, 3, 5}}},        // batch (classifier-free guidance)
	{1, [][]int{{2, 77, 8}, {2, 16, 8}}},      // tokens
	{2, [][]int{{3, 2, 1}, {3, 2, 7}, {3, 2, 1}, {3, 2, 3}}},
	{0, [][]int{{1031}}},
}

// check compares Concat, then Slice over every axis of the first part, at
// the ends and in the middle. Data movement must be exact.
func (c concatCase) check(p *parity) {
	var ps []pair
	var refs, gpus []*tensor.Tensor
	for i, s := range c.parts {
		x := p.randView(i*3, -1, 1, s...)
		ps = append(ps, x)
		refs, gpus = append(refs, x.ref), append(gpus, x.gpu)
	}
	p.check(fmt.Sprintf("concat axis %d %v", c.axis, c.parts), p.ref.Concat(c.axis, refs...), p.gpu.Concat(c.axis, gpus...), 0, 0)
	x := ps[0]
	for axis, n := range x.ref.Shape {
		for _, r := range [][2]int{{0, n}, {0, (n + 1) / 2}, {n / 2, n}, {n / 3, n/3 + 1}} {
			p.check(fmt.Sprintf("slice %v axis %d [%d:%d]", x.ref.Shape, axis, r[0], r[1]),
				p.ref.Slice(x.ref, axis, r[0], r[1]), p.gpu.Slice(x.gpu, axis, r[0], r[1]), 0, 0)
		}
	}
	p.free(ps...)
}

type embeddingCase struct {
	dt  tensor.DType
	v   int
	d   int
	off int
}

var embeddingCases = []embeddingCase{
	{tensor.F32, 49, 32, 0},
	{tensor.F32, 49, 33, 7},
	{tensor.F16, 49, 32, 0},
	{tensor.F16, 49, 33, 1}, // table starts in the middle of a word, odd rows
	{tensor.F16, 49, 768, 3},
}

var embeddingIDs = []int32{0, 5, 5, 48, 1, 0, 48, 17, 30}

func (c embeddingCase) check(p *parity) {
	var tab pair
	if c.dt == tensor.F16 {
		tab = p.randF16(c.off, -1, 1, c.v, c.d)
	} else {
		tab = p.randView(c.off, -1, 1, c.v, c.d)
	}
	p.check(fmt.Sprintf("embedding %v [%d, %d] off %d", c.dt, c.v, c.d, c.off),
		p.ref.Embedding(tab.ref, embeddingIDs), p.gpu.Embedding(tab.gpu, embeddingIDs), 0, 0)
	p.free(tab)
}

// checkConvert compares Convert both ways on f32 and f16 tensors and views
// (the delicate values f16Specials among random ones), over every 4099th
// f32 bit pattern, and a GPU-only round trip f32 → f16 → f32.
func checkConvert(p *parity) {
	vals := append(append([]float32(nil), f16Specials...), p.values(1000, -100, 100)...)
	x := p.from(vals, len(vals))
	xv := pair{ref: p.ref.View(x.ref, 3, 5, 199), gpu: p.gpu.View(x.gpu, 3, 5, 199)}
	for _, in := range []struct {
		name string
		x    pair
	}{{"f32", x}, {"f32 view", xv}, {"f16", p.randF16(0, -3, 3, 7, 9)}, {"f16 view", p.randF16(1, -3, 3, 2, 37)}} {
		for _, dt := range []tensor.DType{tensor.F16, tensor.F32} {
			p.check(fmt.Sprintf("convert %s %v → %v", in.name, in.x.ref.Shape, dt),
				p.ref.Convert(in.x.ref, dt), p.gpu.Convert(in.x.gpu, dt), 0, 0)
		}
	}
	// Every 4099th f32 bit pattern (NaNs aside): a million roundings.
	var sweep []float32
	for u := uint64(0); u < 1<<32; u += 4099 {
		if v := math.Float32frombits(uint32(u)); v == v {
			sweep = append(sweep, v)
		}
	}
	s := p.from(sweep, len(sweep))
	p.check(fmt.Sprintf("convert f32 → f16, %d bit patterns", len(sweep)), p.ref.Convert(s.ref, tensor.F16), p.gpu.Convert(s.gpu, tensor.F16), 0, 0)
	h := p.gpu.Convert(x.gpu, tensor.F16)
	back := p.gpu.Convert(h, tensor.F32)
	p.check("convert f32 → f16 → f32", p.ref.Convert(p.ref.Convert(x.ref, tensor.F16), tensor.F32), back, 0, 0)
}

type timestepCase struct {
	dim   int
	flip  bool
	shift float32
}

var timestepCases = []timestepCase{
	{320, true, 0}, // SD's UNet
	{320, false, 1},
	{256, false, 0},
	{7, true, 1}, // odd: a zero last column
	{1, false, 0},
}

var timesteps = []float32{0, 1, 999, 500.5, 37, 981, 1000, 0.25}

func (c timestepCase) check(p *parity) {
	p.check(fmt.Sprintf("timestep_embedding dim %d flip %v shift %g", c.dim, c.flip, c.shift),
		p.ref.TimestepEmbedding(timesteps, c.dim, c.flip, c.shift), p.gpu.TimestepEmbedding(timesteps, c.dim, c.flip, c.shift), 0, 1e-6)
}

type localMixCase struct {
	b, n, h, d int
	w          []float32
}

var localMixCases = []localMixCase{
	{1, 1, 1, 1, []float32{0.8}},
	{1, 37, 3, 5, []float32{1}},
	{2, 67, 8, 5, []float32{0, 0.8}},         // an uncond row without the term
	{4, 259, 2, 13, []float32{0, 0, 0.6, 1}}, // Harmony's batch of four
	{3, 1100, 5, 7, []float32{-0.5, 2, 0.3}}, // over one workgroup's 1024 elements
}

func (c localMixCase) name() string {
	return fmt.Sprintf("local mix b%d n%d h%d d%d", c.b, c.n, c.h, c.d)
}

func (c localMixCase) check(p *parity) {
	o := p.randView(3, -2, 2, c.b, c.n, c.h*c.d)
	x := p.rand(-3, 3, c.b, c.n, c.h*c.d)
	g := p.rand(0, 1, c.b, c.n, c.h)
	p.check(c.name(), p.ref.LocalMix(o.ref, x.ref, g.ref, c.w), p.gpu.LocalMix(o.gpu, x.gpu, g.gpu, c.w), tolRel, tolAbs)
	p.free(o, x, g)
}

// checkLocalMixNegativeGate: a gate whose maximum is not positive adds
// nothing.
func checkLocalMixNegativeGate(p *parity) {
	o := p.rand(-1, 1, 2, 5, 6)
	x := p.rand(-1, 1, 2, 5, 6)
	g := p.rand(-1, -0.5, 2, 5, 3)
	p.check("local mix, negative gate", o.ref, p.gpu.LocalMix(o.gpu, x.gpu, g.gpu, []float32{1, 1}), 0, 0)
	p.free(o, x, g)
}
