// bindlimit_test.go: ops on tensors larger than a (stand-in) storage
// binding limit split their dispatches to fit and match the CPU reference.
// Linear, Conv2D, GroupNorm and Embedding have their own split tests
// (dense_test.go, norm_test.go, layout_test.go). Not split, because their
// tensors stay far below 128 MiB at the released model's size and 512²
// (the largest, f32, batch 4): Attention (q/k/v [4, 4096, 320], 21 MB),
// LayerNorm ([4·4096, 320], 21 MB), Upsample2x (at most [4, 64, 64, 640],
// 42 MB, where a convolution does not fuse it), Concat and Slice (skip
// joins [4, 64, 64, 640], 42 MB; joined q/k/v weights, 20 MB) and the
// timestep embedding; an oversized binding there is a *gpu.LimitError
// naming the binding, never a wrong result.
package kernels

import (
	"errors"
	"fmt"
	"testing"

	"harmony/engine/gpu"
	"harmony/engine/tensor"
)

// TestOpsUnderBindLimit runs each op whose tensors outgrow a binding at
// full size with a 1 KiB stand-in limit on odd sizes, with and without
// guard bands, against the CPU reference.
func TestOpsUnderBindLimit(t *testing.T) {
	// Not parallel: the dispatch count is the device's, shared with the
	// other tests.
	p := newParity(t)
	const limit = 1024
	x := p.rand(-2, 2, 2, 7, 9, 13)    // 1638 elements, 6.4 KB
	y := p.rand(-2, 2, 2, 7, 9, 13)    // same shape
	row := p.rand(-2, 2, 13)           // broadcast over rows
	col := p.rand(-2, 2, 2, 7, 9, 1)   // broadcast over the last dim
	g := p.rand(-2, 2, 3, 5, 2*37)     // GEGLU input
	wide := p.rand(-2, 2, 1, 300)      // one row wider than the limit
	xo := p.randView(5, -2, 2, 41, 17) // starts mid-binding
	cases := []struct {
		name string
		run  func(b tensor.Backend, x, y, row, col, g, xo *tensor.Tensor) *tensor.Tensor
	}{
		{"activate silu", func(b tensor.Backend, x, _, _, _, _, _ *tensor.Tensor) *tensor.Tensor {
			return b.Activate(x, tensor.ActSiLU)
		}},
		{"scale", func(b tensor.Backend, _, _, _, _, _, xo *tensor.Tensor) *tensor.Tensor { return b.Scale(xo, 0.5, 1) }},
		{"add same shape", func(b tensor.Backend, x, y, _, _, _, _ *tensor.Tensor) *tensor.Tensor { return b.Add(x, y) }},
		{"add row broadcast", func(b tensor.Backend, x, _, row, _, _, _ *tensor.Tensor) *tensor.Tensor { return b.Add(x, row) }},
		{"mul column broadcast", func(b tensor.Backend, x, _, _, col, _, _ *tensor.Tensor) *tensor.Tensor { return b.Mul(x, col) }},
		{"convert f32→f16", func(b tensor.Backend, x, _, _, _, _, _ *tensor.Tensor) *tensor.Tensor {
			return b.Convert(x, tensor.F16)
		}},
		{"convert f16→f32 (offset)", func(b tensor.Backend, _, _, _, _, _, xo *tensor.Tensor) *tensor.Tensor {
			h := b.Convert(xo, tensor.F16)
			defer b.Free(h)
			return b.Convert(b.View(h, 3, 600), tensor.F32)
		}},
		{"geglu", func(b tensor.Backend, _, _, _, _, g, _ *tensor.Tensor) *tensor.Tensor { return b.GEGLU(g) }},
	}
	for _, c := range cases {
		want := c.run(p.ref, x.ref, y.ref, row.ref, col.ref, g.ref, xo.ref)
		for _, guard := range []bool{true, false} {
			name := fmt.Sprintf("%s limit %d guard=%v", c.name, limit, guard)
			p.gpu.cfg.bindLimit, p.gpu.guard = limit, guard
			d0 := p.gpu.Device().Stats().Dispatches
			got := c.run(p.gpu, x.gpu, y.gpu, row.gpu, col.gpu, g.gpu, xo.gpu)
			n := p.gpu.Device().Stats().Dispatches - d0
			p.gpu.cfg.bindLimit, p.gpu.guard = 0, true
			if n < 2 {
				t.Errorf("%s: %d dispatch(es): the split did not happen", name, n)
			}
			if guard {
				p.check(name, want, got, tolRel, tolAbs)
			} else if e, tol := maxDiff(p.read(p.ref, want), p.read(p.gpu, got), tolRel, tolAbs); !(e <= tol) {
				t.Errorf("%s: max|gpu − cpu| = %g > %g", name, e, tol)
			}
			p.gpu.Free(got)
		}
		p.ref.Free(want)
	}
	// One row wider than a binding: refused, not computed wrong.
	p.gpu.cfg.bindLimit = limit
	p.gpu.GEGLU(wide.gpu)
	p.gpu.cfg.bindLimit = 0
	var le *gpu.LimitError
	if err := p.gpu.Err(); !errors.As(err, &le) {
		t.Fatalf("a GEGLU row wider than the binding: error %v, want a *gpu.LimitError", err)
	}
}
