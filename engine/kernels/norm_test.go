// norm_test.go: GroupNorm and LayerNorm against the CPU reference.
package kernels

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"harmony/engine/gpu"
	"harmony/engine/tensor"
)

// normPaths runs f on a parity whose backend is forced onto the norms'
// multi-kernel or tree paths (GroupNorm's three kernels, LayerNorm's
// threads per row) and onto the single-pass ones (GN_FUSED, LN_ROW) in
// turn.
func normPaths(t *testing.T, f func(t *testing.T, p *parity)) {
	for _, fused := range []bool{false, true} {
		t.Run(fmt.Sprintf("fused=%v", fused), func(t *testing.T) {
			p := newParity(t)
			lim := -1
			if fused {
				lim = 1 << 30
			}
			p.gpu.cfg.gnFusedMax, p.gpu.cfg.gnFusedMaxCPU, p.gpu.cfg.lnRowMax = lim, lim, lim
			f(t, p)
		})
	}
}

func TestGroupNormParity(t *testing.T) {
	t.Parallel()
	normPaths(t, func(t *testing.T, p *parity) {
		for _, c := range groupNormCases {
			c.checkGroupNorm(p)
		}
	})
}

// TestGroupNormDispatches: a group within gnFusedMax is one dispatch.
func TestGroupNormDispatches(t *testing.T) {
	p := newParity(t)
	x, g, b := normCase{shape: []int{2, 8, 8, 64}, groups: 8, lo: -1, hi: 1}.inputs(p)
	defer p.free(x, g, b)
	d0 := p.gpu.Device().Stats().Dispatches
	p.gpu.Free(p.gpu.GroupNorm(x.gpu, g.gpu, b.gpu, 8, 1e-5, true))
	if n := p.gpu.Device().Stats().Dispatches - d0; n != 1 {
		t.Errorf("group norm of 2×8×8×64: %d dispatches, want 1", n)
	}
}

// TestGroupNormFarMean normalizes data whose mean (1000) dwarfs its spread
// (0.29): E[x²] − E[x]² in f32 would lose the variance entirely, and even
// Welford on x itself leaves the f32 mean off by ~1e-4 (3e-4 in y). Both
// norms shift by the group's (row's) first element, which keeps y to the
// usual tolerance.
func TestGroupNormFarMean(t *testing.T) {
	t.Parallel()
	normPaths(t, func(t *testing.T, p *parity) {
		c := normCase{shape: []int{2, 32, 32, 64}, groups: 8, eps: 1e-6, lo: 1000, hi: 1001}
		x, g, b := c.inputs(p)
		p.check("group_norm far mean "+c.String(), p.ref.GroupNorm(x.ref, g.ref, b.ref, c.groups, c.eps, false),
			p.gpu.GroupNorm(x.gpu, g.gpu, b.gpu, c.groups, c.eps, false), tolRel, tolAbs)
		p.check("layer_norm far mean", p.ref.LayerNorm(x.ref, g.ref, b.ref, c.eps),
			p.gpu.LayerNorm(x.gpu, g.gpu, b.gpu, c.eps), tolRel, tolAbs)
	})
}

// TestGroupNormPlan checks the work split on the shapes that matter: SD's
// UNet at 64×64×320 and the VAE decoder at 512×512×128.
func TestGroupNormPlan(t *testing.T) {
	for _, c := range []struct {
		s, c, g        int
		nc, rows, want int // thread columns, rows, chunks
	}{
		{4096, 320, 32, 60, 4, 64},
		{262144, 128, 32, 64, 4, 4096},
		{64, 600, 1, 256, 1, 13},
		{1000000, 128, 32, 64, 4, 4033}, // past gnMaxChunks: longer chunks
	} {
		pl := planGroupNorm(c.s, c.c, c.g)
		if pl.nc != c.nc || pl.rows != c.rows || pl.chunks != c.want {
			t.Errorf("plan(%d, %d, %d) = %+v, want nc %d rows %d chunks %d", c.s, c.c, c.g, pl, c.nc, c.rows, c.want)
		}
		if pl.chunks > gnMaxChunks || pl.chunk%pl.rows != 0 || pl.chunks*pl.chunk < c.s {
			t.Errorf("plan(%d, %d, %d) = %+v does not cover the positions", c.s, c.c, c.g, pl)
		}
	}
}

func TestLayerNormParity(t *testing.T) {
	t.Parallel()
	normPaths(t, func(t *testing.T, p *parity) {
		for _, c := range layerNormCases {
			c.checkLayerNorm(p)
		}
	})
}

// TestNormDefaultLimits runs a few cases on a device with the WebGPU
// specification's default limits.
func TestNormDefaultLimits(t *testing.T) {
	t.Parallel()
	p := newParity(t, gpu.Options{DefaultLimits: true})
	for _, c := range []normCase{groupNormCases[1], groupNormCases[3], groupNormCases[5]} {
		x, g, b := c.inputs(p)
		p.check("group_norm (default limits) "+c.String(), p.ref.GroupNorm(x.ref, g.ref, b.ref, c.groups, c.eps, true),
			p.gpu.GroupNorm(x.gpu, g.gpu, b.gpu, c.groups, c.eps, true), tolRel, tolAbs)
		p.free(x, g, b)
	}
	c := layerNormCases[1]
	x, g, b := c.inputs(p)
	p.check("layer_norm (default limits) "+c.String(), p.ref.LayerNorm(x.ref, g.ref, b.ref, c.eps),
		p.gpu.LayerNorm(x.gpu, g.gpu, b.gpu, c.eps), tolRel, tolAbs)
}

func TestNormErrors(t *testing.T) {
	t.Parallel()
	p := newParity(t)
	x := p.rand(0, 1, 2, 3, 6)
	g := p.rand(0, 1, 6)
	cases := map[string]func(*Backend){
		"groups not dividing C": func(b *Backend) { b.GroupNorm(x.gpu, g.gpu, g.gpu, 4, 1e-5, false) },
		"zero groups":           func(b *Backend) { b.GroupNorm(x.gpu, g.gpu, g.gpu, 0, 1e-5, false) },
		"gamma too short":       func(b *Backend) { b.LayerNorm(x.gpu, p.rand(0, 1, 5).gpu, g.gpu, 1e-5) },
	}
	for name, f := range cases {
		b := New(p.gpu.Device())
		f(b)
		var se *tensor.ShapeError
		if err := b.Err(); err == nil || !errors.As(err, &se) {
			t.Errorf("%s: err = %v, want a tensor.ShapeError", name, err)
		}
	}
}

// TestGroupNormBindingSplits: a GroupNorm input larger than a storage
// binding may be (the 512×512 VAE decode's [1, 512, 512, 256] map is twice
// the default 128 MiB) is normalized in windows of positions. Stand-in
// limits make small tensors split, down to windows shorter than one
// statistics chunk; the far-mean case proves the merge re-bases the
// windows' shifts.
func TestGroupNormBindingSplits(t *testing.T) {
	p := newParity(t)
	for _, tc := range []struct {
		c       normCase
		limit   uint64
		minDisp int64 // at least this many dispatches
	}{
		{normCase{shape: []int{2, 13, 11, 64}, groups: 8, eps: 1e-5, lo: -2, hi: 2}, 16384, 9},
		{normCase{shape: []int{1, 40, 40, 12}, groups: 3, eps: 1e-6, lo: 1000, hi: 1001}, 32256, 7},
		{normCase{shape: []int{2, 9, 7, 32}, groups: 4, eps: 1e-5, lo: -3, hi: 1, xOff: 5, paramOff: 3}, 2048, 17},
		{normCase{shape: []int{1, 64, 64, 8}, groups: 2, eps: 1e-6, lo: -1, hi: 3}, 33024, 9}, // two chunks per window
		{normCase{shape: []int{3, 8, 8, 16}, groups: 4, eps: 1e-5, lo: -1, hi: 1}, 4096, 7},   // one batch entry per window
	} {
		p.gpu.cfg.bindLimit = 0
		x, g, b := tc.c.inputs(p)
		for _, guard := range []bool{true, false} {
			name := fmt.Sprintf("group_norm %v limit %d guard=%v", tc.c, tc.limit, guard)
			p.gpu.cfg.bindLimit = tc.limit
			p.gpu.guard = guard
			d0 := p.gpu.Device().Stats().Dispatches
			got := p.gpu.GroupNorm(x.gpu, g.gpu, b.gpu, tc.c.groups, tc.c.eps, true)
			n := p.gpu.Device().Stats().Dispatches - d0
			p.gpu.cfg.bindLimit = 0
			p.gpu.guard = true
			want := p.ref.GroupNorm(x.ref, g.ref, b.ref, tc.c.groups, tc.c.eps, true)
			if n < tc.minDisp {
				t.Errorf("%s: %d dispatches, want ≥ %d: the split did not happen", name, n, tc.minDisp)
			}
			if guard {
				p.check(name, want, got, tolRel, tolAbs)
			} else {
				e, tol := maxDiff(p.read(p.ref, want), p.read(p.gpu, got), tolRel, tolAbs)
				t.Logf("%-40s max|err| %.3g (tolerance %.3g)", name, e, tol)
				if !(e <= tol) {
					t.Errorf("%s: max|gpu − cpu| = %.3g > %.3g", name, e, tol)
				}
			}
			p.ref.Free(want)
			p.gpu.Free(got)
		}
		p.free(x, g, b)
	}
	// A position wider than the binding is refused, not computed wrong.
	p.gpu.cfg.bindLimit = 32
	x, g, b := p.rand(0, 1, 1, 4, 16), p.rand(0, 1, 16), p.rand(0, 1, 16)
	p.gpu.GroupNorm(x.gpu, g.gpu, b.gpu, 4, 1e-5, false)
	var le *gpu.LimitError
	if err := p.gpu.Err(); !errors.As(err, &le) {
		t.Fatalf("oversized position: error %v, want a *gpu.LimitError", err)
	}
}

// maxDiff is max|got − want| and the tolerance rel·max|want| + abs.
func maxDiff(want, got []float32, rel, abs float64) (e, tol float64) {
	var maxRef float64
	for i := range want {
		maxRef = max(maxRef, math.Abs(float64(want[i])))
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		e = max(e, d)
	}
	return e, rel*maxRef + abs
}
