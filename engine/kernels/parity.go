// parity.go: shared helpers for GPU-vs-CPU parity checks of any kernel
// family (the tests, and RunParity outside them). A parity holds both backends (the GPU one in guard mode) and makes
// tensors that carry the same values on each; check compares an op's two
// results within max|gpu − ref| ≤ rel·max|ref| + abs and verifies the
// guard bands around the GPU result.
//
//	p := newParity(t)
//	x := p.rand(-2, 2, 2, 5, 7)              // same random [2,5,7] on both
//	p.check("silu", p.ref.Activate(x.ref, tensor.ActSiLU),
//		p.gpu.Activate(x.gpu, tensor.ActSiLU), tolRel, tolAbs)
package kernels

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand"
	"slices"

	"github.com/x448/float16"

	"harmony/engine/cpu"
	"harmony/engine/gpu"
	"harmony/engine/tensor"
)

// The default parity tolerance: max|gpu − ref| ≤ tolRel·max|ref| + tolAbs.
const (
	tolRel = 1e-5
	tolAbs = 1e-6
)

// parity runs ops on the CPU reference and on the GPU side by side.
type parity struct {
	t   reporter
	ctx context.Context
	ref *cpu.Backend
	gpu *Backend
	rng *rand.Rand
}

// pair is one tensor on both backends, holding the same values.
type pair struct {
	ref, gpu *tensor.Tensor
}

// newParityOn is a parity on dev with guard mode on and a fixed random
// seed.
func newParityOn(t reporter, dev *gpu.Device) *parity {
	g := New(dev)
	g.guard = true
	return &parity{t: t, ctx: context.Background(), ref: cpu.New(), gpu: g, rng: rand.New(rand.NewSource(1))}
}

// reporter is what a parity check reports to: a *testing.T in the tests,
// a caseReporter (paritysuite.go) in RunParity. Fatalf must not return.
type reporter interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// values returns n uniform random values in [lo, hi).
func (p *parity) values(n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*p.rng.Float32()
	}
	return v
}

// from makes an F32 tensor holding data on both backends.
func (p *parity) from(data []float32, shape ...int) pair {
	p.t.Helper()
	return pair{ref: p.ref.FromF32("ref", data, shape...), gpu: p.gpu.FromF32("gpu", data, shape...)}
}

// rand makes an F32 tensor of uniform values in [lo, hi) on both backends.
func (p *parity) rand(lo, hi float32, shape ...int) pair {
	return p.from(p.values(tensor.Numel(shape), lo, hi), shape...)
}

// randView is rand as a view off elements into a larger random tensor (and
// ending before its end), to exercise unaligned bindings.
func (p *parity) randView(off int, lo, hi float32, shape ...int) pair {
	n := tensor.Numel(shape)
	base := p.rand(lo, hi, off+n+3)
	return pair{ref: p.ref.View(base.ref, off, shape...), gpu: p.gpu.View(base.gpu, off, shape...)}
}

// randF16 makes an F16 tensor of uniform values in [lo, hi) (rounded to
// binary16) on both backends, as a view off halves into a larger one.
func (p *parity) randF16(off int, lo, hi float32, shape ...int) pair {
	n := tensor.Numel(shape)
	total := off + n + 1
	raw := make([]byte, 2*total)
	for i, v := range p.values(total, lo, hi) {
		binary.LittleEndian.PutUint16(raw[2*i:], float16.Fromfloat32(v).Bits())
	}
	r := p.ref.NewWeight("ref.f16", tensor.F16, total)
	g := p.gpu.NewWeight("gpu.f16", tensor.F16, total)
	p.ref.Upload(r, 0, raw)
	p.gpu.Upload(g, 0, raw)
	return pair{ref: p.ref.View(r, off, shape...), gpu: p.gpu.View(g, off, shape...)}
}

// read returns a tensor's values, failing the test on any backend error.
func (p *parity) read(b tensor.Backend, t *tensor.Tensor) []float32 {
	p.t.Helper()
	v, err := b.Read(p.ctx, t)
	if err != nil {
		p.t.Fatalf("%s: read %v: %v", b.Name(), t, err)
	}
	return v
}

// check compares got (GPU) with want (CPU): same shape and dtype, intact
// guard bands, max|got − want| ≤ rel·max|want| + abs (infinities and NaN
// must match, and with rel = abs = 0 so must the sign of zero; max|want| is
// over the finite values). It
// returns the max error and logs it with name, for the parity table.
func (p *parity) check(name string, want, got *tensor.Tensor, rel, abs float64) float64 {
	p.t.Helper()
	if err := p.ref.Err(); err != nil {
		p.t.Fatalf("%s: cpu: %v", name, err)
	}
	if err := p.gpu.Err(); err != nil {
		p.t.Fatalf("%s: gpu: %v", name, err)
	}
	if !slices.Equal(want.Shape, got.Shape) || want.DType != got.DType {
		p.t.Fatalf("%s: gpu gave %v, cpu %v", name, got, want)
	}
	w, g := p.read(p.ref, want), p.read(p.gpu, got)
	if err := p.gpu.checkGuards(p.ctx, got); err != nil {
		p.t.Fatalf("%s: %v", name, err)
	}
	var maxRef, maxErr float64
	worst := 0
	for i := range w {
		if !math.IsInf(float64(w[i]), 0) {
			maxRef = max(maxRef, math.Abs(float64(w[i])))
		}
		var e float64
		switch gi, wi := float64(g[i]), float64(w[i]); {
		case rel == 0 && abs == 0 && math.Signbit(gi) != math.Signbit(wi) && !math.IsNaN(wi):
			e = math.Inf(1) // exact checks tell -0 from +0
		case gi == wi, math.IsNaN(gi) && math.IsNaN(wi):
		case math.IsInf(wi, 0) || math.IsNaN(gi) || math.IsNaN(wi):
			e = math.Inf(1)
		default:
			e = math.Abs(gi - wi)
		}
		if e > maxErr || math.IsInf(e, 1) {
			maxErr, worst = e, i
		}
	}
	tol := rel*maxRef + abs
	p.t.Logf("%-40s max|err| %.3g (tolerance %.3g, max|ref| %.3g)", name, maxErr, tol, maxRef)
	if !(maxErr <= tol) {
		p.t.Errorf("%s: max|gpu − cpu| = %.3g at %d (gpu %v, cpu %v) > %.3g", name, maxErr, worst, g[worst], w[worst], tol)
	}
	return maxErr
}

// free releases tensors on both backends.
func (p *parity) free(ps ...pair) {
	for _, x := range ps {
		p.ref.Free(x.ref)
		p.gpu.Free(x.gpu)
	}
}
