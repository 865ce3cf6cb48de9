// localmix_test.go: LocalMix against the CPU reference (odd sizes, views,
// zero weights, a non-positive gate), and the reference against its
// definition.
package kernels

import (
	"math"
	"testing"

	"harmony/engine/cpu"
)

func TestLocalMixParity(t *testing.T) {
	t.Parallel()
	p := newParity(t)
	for _, c := range localMixCases {
		c.check(p)
	}
	checkLocalMixNegativeGate(p)
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
