// layout_test.go: Upsample2x, Concat, Slice, Embedding, Convert and the
// timestep embedding against the CPU reference. Data movement must be exact.
package kernels

import (
	"errors"
	"fmt"
	"testing"

	"harmony/engine/gpu"
	"harmony/engine/tensor"
)

func TestUpsample2xParity(t *testing.T) {
	t.Parallel()
	p := newParity(t)
	for _, c := range upsampleCases {
		c.check(p)
	}
}

func TestConcatSliceParity(t *testing.T) {
	t.Parallel()
	p := newParity(t)
	for _, c := range concatCases {
		c.check(p)
	}
}

func TestEmbeddingParity(t *testing.T) {
	t.Parallel()
	p := newParity(t)
	for _, c := range embeddingCases {
		c.check(p)
	}
}

// TestEmbeddingSplitParity binds tables larger than a (stand-in) binding
// limit a window of rows at a time, as CLIP's f32 token table needs on a
// 128 MiB adapter: every window an id falls in takes one dispatch, ids at
// window edges and repeated ids included, with and without guard bands.
func TestEmbeddingSplitParity(t *testing.T) {
	// Not parallel: the dispatch count is the device's, shared with the
	// other tests.
	p := newParity(t)
	align := int(p.gpu.Device().Limits().MinStorageBufferOffsetAlignment)
	for _, c := range []struct {
		dt    tensor.DType
		v, d  int
		off   int
		limit uint64
		ids   []int32
	}{
		{tensor.F32, 97, 33, 7, 1024, []int32{0, 5, 6, 96, 48, 48, 11, 12, 90}},
		{tensor.F16, 97, 33, 1, 1024, []int32{0, 10, 11, 96, 48, 48, 21, 22, 90}},
		{tensor.F16, 61, 35, 0, 1024, []int32{60}}, // one window taken, the rest skipped
		{tensor.F32, 50, 7, 3, 512, []int32{49, 0, 9, 18, 27, 36, 45, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}},
		{tensor.F32, 19, 60, 0, 0, []int32{3, 18}}, // fits: one dispatch
	} {
		// Expected dispatches: per chunk of ids that fits a binding, the
		// table windows its ids fall in.
		want := 1
		if c.limit > 0 {
			rows, chunk := (int(c.limit)-align)/(c.d*c.dt.Size()), (int(c.limit)-align)/(4*c.d)
			want = 0
			for c0 := 0; c0 < len(c.ids); c0 += chunk {
				wins := map[int32]bool{}
				for _, id := range c.ids[c0:min(c0+chunk, len(c.ids))] {
					wins[id/int32(rows)] = true
				}
				want += len(wins)
			}
		}
		var tab pair
		if c.dt == tensor.F16 {
			tab = p.randF16(c.off, -1, 1, c.v, c.d)
		} else {
			tab = p.randView(c.off, -1, 1, c.v, c.d)
		}
		ref := p.ref.Embedding(tab.ref, c.ids)
		for _, guard := range []bool{true, false} {
			name := fmt.Sprintf("embedding %v [%d, %d] off %d limit %d guard=%v", c.dt, c.v, c.d, c.off, c.limit, guard)
			p.gpu.cfg.bindLimit, p.gpu.guard = c.limit, guard
			d0 := p.gpu.Device().Stats().Dispatches
			got := p.gpu.Embedding(tab.gpu, c.ids)
			n := p.gpu.Device().Stats().Dispatches - d0
			p.gpu.cfg.bindLimit, p.gpu.guard = 0, true
			if n != int64(want) {
				t.Errorf("%s: %d dispatches, want %d", name, n, want)
			}
			if guard {
				p.check(name, ref, got, 0, 0)
			} else if e, _ := maxDiff(p.read(p.ref, ref), p.read(p.gpu, got), 0, 0); e != 0 {
				t.Errorf("%s: max|gpu − cpu| = %g, want 0", name, e)
			}
			p.gpu.Free(got)
		}
		p.ref.Free(ref)
		p.free(tab)
	}
	// A row wider than a binding is refused, not computed wrong.
	tab := p.randView(0, -1, 1, 4, 300)
	p.gpu.cfg.bindLimit = 1024
	p.gpu.Embedding(tab.gpu, []int32{1})
	p.gpu.cfg.bindLimit = 0
	var le *gpu.LimitError
	if err := p.gpu.Err(); !errors.As(err, &le) {
		t.Fatalf("oversized row: error %v, want a *gpu.LimitError", err)
	}
}

func TestConvertParity(t *testing.T) {
	t.Parallel()
	checkConvert(newParity(t))
}

func TestTimestepEmbeddingParity(t *testing.T) {
	t.Parallel()
	p := newParity(t)
	for _, c := range timestepCases {
		c.check(p)
	}
}

// TestFoldedGrid needs more than 65535 workgroups, so the device folds the
// grid into two dimensions: the timestep kernel (256 elements a workgroup)
// over 65537 rows of 256.
func TestFoldedGrid(t *testing.T) {
	if testing.Short() {
		t.Skip("67 MB tensors")
	}
	p := newParity(t)
	ts := p.values(65537, 0, 1000)
	p.check("timestep_embedding 65537×256 (folded grid)", p.ref.TimestepEmbedding(ts, 256, true, 0),
		p.gpu.TimestepEmbedding(ts, 256, true, 0), 0, 1e-6)
}

func TestLayoutDefaultLimits(t *testing.T) {
	t.Parallel()
	p := newParity(t, gpu.Options{DefaultLimits: true})
	x := p.randView(1, -1, 1, 2, 3, 5, 7)
	p.check("upsample2x (default limits)", p.ref.Upsample2x(x.ref), p.gpu.Upsample2x(x.gpu), 0, 0)
	p.check("concat (default limits)", p.ref.Concat(-1, x.ref, x.ref), p.gpu.Concat(-1, x.gpu, x.gpu), 0, 0)
	p.check("slice (default limits)", p.ref.Slice(x.ref, 2, 1, 4), p.gpu.Slice(x.gpu, 2, 1, 4), 0, 0)
	tab := p.randF16(1, -1, 1, 10, 9)
	p.check("embedding f16 (default limits)", p.ref.Embedding(tab.ref, []int32{9, 0, 3}), p.gpu.Embedding(tab.gpu, []int32{9, 0, 3}), 0, 0)
	p.check("convert (default limits)", p.ref.Convert(x.ref, tensor.F16), p.gpu.Convert(x.gpu, tensor.F16), 0, 0)
	p.check("timestep (default limits)", p.ref.TimestepEmbedding([]float32{999, 3}, 320, true, 0),
		p.gpu.TimestepEmbedding([]float32{999, 3}, 320, true, 0), 0, 1e-6)
}

func TestLayoutErrors(t *testing.T) {
	t.Parallel()
	p := newParity(t)
	x := p.rand(0, 1, 2, 3, 4)
	cases := map[string]func(*Backend){
		"embedding id too big":  func(b *Backend) { b.Embedding(p.rand(0, 1, 4, 3).gpu, []int32{1, 4}) },
		"embedding id negative": func(b *Backend) { b.Embedding(p.rand(0, 1, 4, 3).gpu, []int32{-1}) },
		"embedding 3-d table":   func(b *Backend) { b.Embedding(x.gpu, []int32{0}) },
		"concat mismatch":       func(b *Backend) { b.Concat(0, x.gpu, p.rand(0, 1, 2, 3, 5).gpu) },
		"slice empty":           func(b *Backend) { b.Slice(x.gpu, 1, 2, 2) },
		"upsample 3-d":          func(b *Backend) { b.Upsample2x(x.gpu) },
	}
	for name, f := range cases {
		b := New(p.gpu.Device())
		f(b)
		var se *tensor.ShapeError
		if err := b.Err(); !errors.As(err, &se) {
			t.Errorf("%s: err = %v, want a tensor.ShapeError", name, err)
		}
	}
}

// TestConcatF16Weights joins f16 weights end to end (weights fused at load):
// word copies when every part is whole words, the host path otherwise; the
// result must be bit-exact.
func TestConcatF16Weights(t *testing.T) {
	t.Parallel()
	p := newOracle(t, false)
	for _, c := range []struct {
		name string
		offs []int
		rows []int
		k    int
	}{
		{"whole words", []int{0, 0, 0}, []int{4, 4, 4}, 6},
		{"odd offsets", []int{1, 0, 3}, []int{3, 2, 5}, 6},
		{"odd sizes", []int{0, 0}, []int{3, 1}, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			p.t = t
			var gs, cs []*tensor.Tensor
			for i, r := range c.rows {
				w := p.randF16("w", c.offs[i], 1, r, c.k)
				gs, cs = append(gs, w.g), append(cs, w.c)
			}
			got, want := p.g.Concat(0, gs...), p.c.Concat(0, cs...)
			if got.DType != tensor.F16 || want.DType != tensor.F16 {
				t.Fatalf("dtypes %v, %v; want f16", got.DType, want.DType)
			}
			p.check(got, want, 0, 0)
		})
	}
}
