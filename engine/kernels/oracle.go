// oracle.go: helpers shared by the dense and attention parity checks (the
// tests, and RunParity outside them): one random input built identically on
// the GPU backend and on the CPU reference (optionally as a view at an odd
// element offset), and the comparison of an op's output against the
// reference with the sentinel guards checked.
package kernels

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand"

	"github.com/x448/float16"

	"harmony/engine/cpu"
	"harmony/engine/gpu"
	"harmony/engine/tensor"
)

// oracle is the GPU backend under test and the CPU reference side by side.
type oracle struct {
	t   reporter
	g   *Backend
	c   *cpu.Backend
	rng *rand.Rand
}

// newOracleOn is a guarded GPU backend on dev and the CPU reference, with a
// fixed random seed.
func newOracleOn(t reporter, dev *gpu.Device) *oracle {
	g := New(dev)
	g.guard = true
	return &oracle{t: t, g: g, c: cpu.New(), rng: rand.New(rand.NewSource(1))}
}

// twin is one input on both backends.
type twin struct {
	g, c *tensor.Tensor
}

// rand makes an F32 input with values uniform in [−scale, scale), placed at
// element offset off of a larger tensor when off > 0.
func (p *oracle) rand(name string, off int, scale float32, shape ...int) twin {
	n := tensor.Numel(shape)
	v := make([]float32, n+off+3)
	for i := range v {
		v[i] = (2*p.rng.Float32() - 1) * scale
	}
	return p.fromF32(name, v, off, shape...)
}

// fromF32 builds a tensor of shape at element offset off of base values v.
func (p *oracle) fromF32(name string, v []float32, off int, shape ...int) twin {
	if off == 0 && len(v) == tensor.Numel(shape) {
		return twin{g: p.g.FromF32(name, v, shape...), c: p.c.FromF32(name, v, shape...)}
	}
	gb := p.g.FromF32(name, v, len(v))
	cb := p.c.FromF32(name, v, len(v))
	return twin{g: p.g.View(gb, off, shape...), c: p.c.View(cb, off, shape...)}
}

// randF16 makes an F16 input (values rounded to binary16) at element offset off.
func (p *oracle) randF16(name string, off int, scale float32, shape ...int) twin {
	n := tensor.Numel(shape)
	total := n + off + 3
	raw := make([]byte, 2*total)
	for i := 0; i < total; i++ {
		f := (2*p.rng.Float32() - 1) * scale
		binary.LittleEndian.PutUint16(raw[2*i:], float16.Fromfloat32(f).Bits())
	}
	gb := p.g.NewWeight(name, tensor.F16, total)
	p.g.Upload(gb, 0, raw)
	cb := p.c.NewWeight(name, tensor.F16, total)
	p.c.Upload(cb, 0, raw)
	return twin{g: p.g.View(gb, off, shape...), c: p.c.View(cb, off, shape...)}
}

// weight makes a weight of dtype dt at element offset off.
func (p *oracle) weight(name string, dt tensor.DType, off int, scale float32, shape ...int) twin {
	if dt == tensor.F16 {
		return p.randF16(name, off, scale, shape...)
	}
	return p.rand(name, off, scale, shape...)
}

// maybe returns the GPU and CPU sides of an optional input.
func (x *twin) sides() (*tensor.Tensor, *tensor.Tensor) {
	if x == nil {
		return nil, nil
	}
	return x.g, x.c
}

// check compares a GPU output with the reference: max|gpu − ref| ≤
// rel·max|ref| + abs, and the guard bands around the output untouched. It
// returns the max error relative to max|ref|.
func (p *oracle) check(got, want *tensor.Tensor, rel, abs float64) float64 {
	t := p.t
	t.Helper()
	ctx := context.Background()
	if err := p.g.Err(); err != nil {
		t.Fatalf("gpu backend: %v", err)
	}
	if err := p.c.Err(); err != nil {
		t.Fatalf("cpu backend: %v", err)
	}
	gv, err := p.g.Read(ctx, got)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	cv, _ := p.c.Read(ctx, want)
	if len(gv) != len(cv) {
		t.Fatalf("gpu output has %d values, reference %d", len(gv), len(cv))
	}
	if p.g.guard {
		if err := p.g.checkGuards(ctx, got); err != nil {
			t.Fatalf("%v", err)
		}
	}
	var maxRef, maxErr float64
	worst := 0
	for i := range cv {
		maxRef = math.Max(maxRef, math.Abs(float64(cv[i])))
		e := math.Abs(float64(gv[i]) - float64(cv[i]))
		if math.IsNaN(e) {
			t.Fatalf("value %d: gpu %v, reference %v", i, gv[i], cv[i])
		}
		if e > maxErr {
			maxErr, worst = e, i
		}
	}
	if maxErr > rel*maxRef+abs {
		t.Fatalf("max |gpu − ref| = %.3g at %d (gpu %v, ref %v) > %.1g·max|ref| (%.3g) + %.1g",
			maxErr, worst, gv[worst], cv[worst], rel, maxRef, abs)
	}
	if maxRef == 0 {
		return maxErr
	}
	return maxErr / maxRef
}
