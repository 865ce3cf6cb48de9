// localmix_test.go: LocalMix against the CPU reference (odd sizes, views,
// zero weights, a non-positive gate), and the reference against its
// definition.
package kernels

import (
	"fmt"
	"math"
	"testing"

	"harmony/engine/cpu"
)

func TestLocalMixParity(t *testing.T) {
	t.Parallel()
	p := newParity(t)
	for _, c := range []struct {
		b, n, h, d int
		w          []float32
	}{
		{1, 1, 1, 1, []float32{0.8}},
		{1, 37, 3, 5, []float32{1}},
		{2, 67, 8, 5, []float32{0, 0.8}},         // an uncond row without the term
		{4, 259, 2, 13, []float32{0, 0, 0.6, 1}}, // Harmony's batch of four
		{3, 1100, 5, 7, []float32{-0.5, 2, 0.3}}, // over one workgroup's 1024 elements
	} {
		name := fmt.Sprintf("local mix b%d n%d h%d d%d", c.b, c.n, c.h, c.d)
		o := p.randView(3, -2, 2, c.b, c.n, c.h*c.d)
		x := p.rand(-3, 3, c.b, c.n, c.h*c.d)
		g := p.rand(0, 1, c.b, c.n, c.h)
		p.check(name, p.ref.LocalMix(o.ref, x.ref, g.ref, c.w), p.gpu.LocalMix(o.gpu, x.gpu, g.gpu, c.w), tolRel, tolAbs)
		p.free(o, x, g)
	}
	// A gate whose maximum is not positive adds nothing.
	o := p.rand(-1, 1, 2, 5, 6)
	x := p.rand(-1, 1, 2, 5, 6)
	g := p.rand(-1, -0.5, 2, 5, 3)
	p.check("local mix, negative gate", o.ref, p.gpu.LocalMix(o.gpu, x.gpu, g.gpu, []float32{1, 1}), 0, 0)
	p.free(o, x, g)
}

// TestLocalMixReference checks the reference against the formula, and
// that bad arguments become the backend's error.
func TestLocalMixReference(t *testing.T) {
	b := cpu.New()
	ov := []float32{1, 2, 3, 4, 5, 6, 7, 8} // [1, 2, 2·2]
	xv := []float32{1, 1, 1, 1, 2, 2, 2, 2} // [1, 2, 4]
	gv := []float32{0.5, 0.25, 1, 0.125}    // [1, 2, 2]: max 1
	out := b.LocalMix(b.FromF32("o", ov, 1, 2, 4), b.FromF32("x", xv, 1, 2, 4), b.FromF32("g", gv, 1, 2, 2), []float32{0.8})
	got := cpu.F32(out)
	want := []float32{1 + 0.4, 2 + 0.4, 3 + 0.2, 4 + 0.2, 5 + 1.6, 6 + 1.6, 7 + 0.2, 8 + 0.2}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("out[%d] = %g, want %g (all %v)", i, got[i], want[i], got)
		}
	}
	b.LocalMix(b.FromF32("o", ov, 1, 2, 4), b.FromF32("x", xv, 1, 2, 4), b.FromF32("g", gv[:3], 1, 1, 3), []float32{1})
	if b.Err() == nil {
		t.Fatal("a gate that does not match o was accepted")
	}
}
