// selfcheck.go runs every kernel once at small, odd sizes and compares it
// with the CPU reference: the GPU check behind `harmony info` and the web
// page's diagnostics. The parity tests cover far more cases; this is the
// quick proof that the adapter at hand computes what the engine expects.
package kernels

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"harmony/engine/cpu"
	"harmony/engine/tensor"
)

// CheckResult is the outcome of one kernel check.
type CheckResult struct {
	Name    string
	MaxAbs  float64 // max |gpu − cpu|
	MaxRef  float64 // max |cpu|
	Elapsed time.Duration
	Err     error
}

// Detail is a one-line summary.
func (r CheckResult) Detail() string {
	if r.Err != nil {
		return r.Err.Error()
	}
	return fmt.Sprintf("max|Δ| %.2g of max|ref| %.3g (%v)", r.MaxAbs, r.MaxRef, r.Elapsed.Round(time.Millisecond))
}

// checkPair holds the same op inputs on both backends.
type checkPair struct {
	g   *Backend
	c   *cpu.Backend
	rng *rand.Rand
}

// rand makes a tensor of uniform values in [-1, 1) on both backends.
func (p *checkPair) rand(dt tensor.DType, shape ...int) (g, c *tensor.Tensor) {
	v := make([]float32, tensor.Numel(shape))
	for i := range v {
		v[i] = float32(p.rng.Float64()*2 - 1)
	}
	g, c = p.g.FromF32("check", v, shape...), p.c.FromF32("check", v, shape...)
	if dt == tensor.F16 {
		g2, c2 := p.g.Convert(g, tensor.F16), p.c.Convert(c, tensor.F16)
		p.g.Free(g)
		p.c.Free(c)
		return g2, c2
	}
	return g, c
}

type check struct {
	name string
	run  func(p *checkPair) (g, c *tensor.Tensor)
}

var selfChecks = []check{
	{"linear f32 + bias + gelu", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		xg, xc := p.rand(tensor.F32, 2, 7, 37)
		wg, wc := p.rand(tensor.F32, 19, 37)
		bg, bc := p.rand(tensor.F32, 19)
		ep := tensor.Epilogue{Act: tensor.ActGELU}
		return p.g.Linear(xg, wg, bg, ep), p.c.Linear(xc, wc, bc, ep)
	}},
	{"linear f16 weights + residual", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		xg, xc := p.rand(tensor.F32, 13, 29)
		wg, wc := p.rand(tensor.F16, 23, 29)
		rg, rc := p.rand(tensor.F32, 13, 23)
		return p.g.Linear(xg, wg, nil, tensor.Epilogue{Residual: rg}), p.c.Linear(xc, wc, nil, tensor.Epilogue{Residual: rc})
	}},
	{"conv2d 3×3 pad 1 + chanbias", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		xg, xc := p.rand(tensor.F32, 2, 9, 11, 5)
		wg, wc := p.rand(tensor.F16, 7, 5, 3, 3)
		bg, bc := p.rand(tensor.F32, 7)
		cg, cc := p.rand(tensor.F32, 2, 7)
		return p.g.Conv2D(xg, wg, bg, tensor.ConvOpts{Pad: 1, ChanBias: cg}), p.c.Conv2D(xc, wc, bc, tensor.ConvOpts{Pad: 1, ChanBias: cc})
	}},
	{"conv2d 3×3 stride 2", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		xg, xc := p.rand(tensor.F32, 1, 10, 7, 6)
		wg, wc := p.rand(tensor.F32, 4, 6, 3, 3)
		o := tensor.ConvOpts{Stride: 2, Pad: 1}
		return p.g.Conv2D(xg, wg, nil, o), p.c.Conv2D(xc, wc, nil, o)
	}},
	{"conv2d upsample 2× + 3×3", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		xg, xc := p.rand(tensor.F32, 1, 4, 5, 3)
		wg, wc := p.rand(tensor.F32, 5, 3, 3, 3)
		o := tensor.ConvOpts{Pad: 1, Upsample: true}
		return p.g.Conv2D(xg, wg, nil, o), p.c.Conv2D(xc, wc, nil, o)
	}},
	{"conv2d 14×14 stride 14 (patch)", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		xg, xc := p.rand(tensor.F32, 1, 28, 42, 3)
		wg, wc := p.rand(tensor.F32, 8, 3, 14, 14)
		o := tensor.ConvOpts{Stride: 14}
		return p.g.Conv2D(xg, wg, nil, o), p.c.Conv2D(xc, wc, nil, o)
	}},
	{"group norm + silu", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		xg, xc := p.rand(tensor.F32, 2, 5, 7, 12)
		gg, gc := p.rand(tensor.F32, 12)
		bg, bc := p.rand(tensor.F32, 12)
		return p.g.GroupNorm(xg, gg, bg, 4, 1e-5, true), p.c.GroupNorm(xc, gc, bc, 4, 1e-5, true)
	}},
	{"layer norm", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		xg, xc := p.rand(tensor.F32, 3, 11, 37)
		gg, gc := p.rand(tensor.F32, 37)
		bg, bc := p.rand(tensor.F32, 37)
		return p.g.LayerNorm(xg, gg, bg, 1e-5), p.c.LayerNorm(xc, gc, bc, 1e-5)
	}},
	{"attention causal + probs", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		qg, qc := p.rand(tensor.F32, 2, 13, 12)
		kg, kc := p.rand(tensor.F32, 2, 13, 12)
		vg, vc := p.rand(tensor.F32, 2, 13, 12)
		o := tensor.AttnOpts{Heads: 3, Scale: 0.5, Causal: true}
		og, _ := p.g.Attention(qg, kg, vg, o)
		oc, _ := p.c.Attention(qc, kc, vc, o)
		return og, oc
	}},
	{"attention cross probs", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		qg, qc := p.rand(tensor.F32, 2, 21, 16)
		kg, kc := p.rand(tensor.F32, 2, 9, 16)
		vg, vc := p.rand(tensor.F32, 2, 9, 8)
		o := tensor.AttnOpts{Heads: 4, Scale: 0.5, ProbCols: [2]int{2, 7}}
		_, pg := p.g.Attention(qg, kg, vg, o)
		_, pc := p.c.Attention(qc, kc, vc, o)
		return pg, pc
	}},
	{"activations silu/gelu/quickgelu", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		xg, xc := p.rand(tensor.F32, 5, 41)
		xg2, xc2 := p.g.Scale(xg, 6, 0), p.c.Scale(xc, 6, 0)
		a := p.g.Activate(p.g.Activate(p.g.Activate(xg2, tensor.ActSiLU), tensor.ActGELU), tensor.ActQuickGELU)
		b := p.c.Activate(p.c.Activate(p.c.Activate(xc2, tensor.ActSiLU), tensor.ActGELU), tensor.ActQuickGELU)
		return a, b
	}},
	{"geglu", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		xg, xc := p.rand(tensor.F32, 3, 5, 18)
		return p.g.GEGLU(xg), p.c.GEGLU(xc)
	}},
	{"add/mul broadcast", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		ag, ac := p.rand(tensor.F32, 2, 3, 5, 7)
		bg, bc := p.rand(tensor.F32, 2, 1, 1, 7)
		cg, cc := p.rand(tensor.F32, 5, 1)
		return p.g.Mul(p.g.Add(ag, bg), cg), p.c.Mul(p.c.Add(ac, bc), cc)
	}},
	{"upsample 2× / concat / slice", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		ag, ac := p.rand(tensor.F32, 1, 3, 4, 5)
		bg, bc := p.rand(tensor.F32, 1, 6, 8, 3)
		ug, uc := p.g.Upsample2x(ag), p.c.Upsample2x(ac)
		return p.g.Slice(p.g.Concat(3, ug, bg), 2, 1, 7), p.c.Slice(p.c.Concat(3, uc, bc), 2, 1, 7)
	}},
	{"embedding f16 table", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		tg, tc := p.rand(tensor.F16, 50, 13)
		ids := []int32{3, 0, 49, 7, 7, 21}
		return p.g.Embedding(tg, ids), p.c.Embedding(tc, ids)
	}},
	{"timestep embedding", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		ts := []float32{999, 875, 1, 0}
		return p.g.TimestepEmbedding(ts, 32, true, 0), p.c.TimestepEmbedding(ts, 32, true, 0)
	}},
	{"convert f32 → f16 → f32", func(p *checkPair) (*tensor.Tensor, *tensor.Tensor) {
		xg, xc := p.rand(tensor.F32, 7, 9)
		return p.g.Convert(p.g.Convert(xg, tensor.F16), tensor.F32), p.c.Convert(p.c.Convert(xc, tensor.F16), tensor.F32)
	}},
}

// SelfCheck runs every kernel check on g and returns the results in order.
// Each check uses a fresh error state, so one failing kernel does not hide
// the others.
func SelfCheck(ctx context.Context, g *Backend) []CheckResult {
	var out []CheckResult
	for i, ck := range selfChecks {
		r := CheckResult{Name: ck.name}
		gb := &Backend{dev: g.dev, F16Arith: g.F16Arith, Subgroup: g.Subgroup, cfg: g.cfg}
		p := &checkPair{g: gb, c: cpu.New(), rng: rand.New(rand.NewPCG(uint64(i), 7))}
		start := time.Now()
		gt, ct := ck.run(p)
		gv, err := gb.Read(ctx, gt)
		r.Elapsed = time.Since(start)
		if err == nil {
			err = p.c.Err()
		}
		if err != nil {
			r.Err = err
			out = append(out, r)
			continue
		}
		cv := cpu.F32(ct)
		if len(gv) != len(cv) {
			r.Err = fmt.Errorf("got %d values, want %d", len(gv), len(cv))
			out = append(out, r)
			continue
		}
		for j := range cv {
			r.MaxRef = math.Max(r.MaxRef, math.Abs(float64(cv[j])))
			d := math.Abs(float64(gv[j]) - float64(cv[j]))
			if math.IsNaN(d) {
				d = math.Inf(1)
			}
			r.MaxAbs = math.Max(r.MaxAbs, d)
		}
		if !(r.MaxAbs <= 1e-5*r.MaxRef+1e-6) {
			r.Err = fmt.Errorf("max|Δ| %.3g exceeds 1e-5·max|ref| (%.3g) + 1e-6", r.MaxAbs, r.MaxRef)
		}
		out = append(out, r)
	}
	return out
}
