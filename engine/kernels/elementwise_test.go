// elementwise_test.go: activations, Scale, GEGLU and broadcasting Add/Mul
// against the CPU reference, and the accuracy of act.wgsl's exp/erf/GELU
// against the standard library.
package kernels

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"harmony/engine/gpu"
	"harmony/engine/tensor"
)

// actRanges are input ranges every activation is checked over (the parity
// tolerance scales with max|ref|, so wide ranges are checked on their own).
var actRanges = [][2]float32{{-1, 1}, {-6, 6}, {-20, 20}, {-120, 120}, {-1e4, 1e4}}

func TestActivateParity(t *testing.T) {
	t.Parallel()
	p := newParity(t)
	for _, a := range []tensor.Act{tensor.ActNone, tensor.ActSiLU, tensor.ActGELU, tensor.ActQuickGELU, tensor.ActLeakyReLU} {
		for i, r := range actRanges {
			shape := []int{3, 5, 67 + i} // not a multiple of the workgroup
			x := p.rand(r[0], r[1], shape...)
			if i == 1 {
				x = p.randView(5, r[0], r[1], shape...)
			}
			name := fmt.Sprintf("activate %v %v on [%g, %g)", a, shape, r[0], r[1])
			p.check(name, p.ref.Activate(x.ref, a), p.gpu.Activate(x.gpu, a), tolRel, tolAbs)
			p.free(x)
		}
	}
}

// mathRef is the float64 function an act.wgsl function approximates.
type mathRef struct {
	fn     string // act.wgsl function, act_<fn>
	ref    func(float64) float64
	lo, hi float64 // input range
	rel    float64 // pointwise relative tolerance …
	slope  float64 // … plus this times |x|
}

// TestActMathAccuracy checks act.wgsl pointwise and relatively (not just
// against max|ref|) over a dense grid: the target is ≲ 1e-7 relative for
// erf. Quick GELU rounds 1.702·x to f32 before exp, which costs up to
// |1.702·x|·2^-24 relative where σ(1.702·x) is tiny (x ≪ 0).
func TestActMathAccuracy(t *testing.T) {
	t.Parallel()
	p := newParity(t)
	gelu := func(x float64) float64 { return 0.5 * x * math.Erfc(-x/math.Sqrt2) }
	silu := func(x float64) float64 { return x / (1 + math.Exp(-x)) }
	for _, c := range []mathRef{
		{"exp", math.Exp, -87, 88, 2e-7, 0},
		{"erf", math.Erf, -6, 6, 1.5e-7, 0},
		{"erf", math.Erf, -1e-3, 1e-3, 1.5e-7, 0},
		{"erfc", math.Erfc, 0, 9, 3e-7, 0},
		{"gelu", gelu, -14, 14, 5e-7, 0},
		{"gelu", gelu, -1e-3, 1e-3, 2e-7, 0},
		{"silu", silu, -80, 80, 3e-7, 0},
		{"quick_gelu", func(x float64) float64 { return x / (1 + math.Exp(-1.702*x)) }, -40, 40, 3e-7, 1.5e-7},
	} {
		const n = 200003
		xs := make([]float32, n)
		for i := range xs {
			xs[i] = float32(c.lo + (c.hi-c.lo)*float64(i)/(n-1))
		}
		x := p.gpu.FromF32("x", xs, n)
		y := p.gpu.unary("math", x, c.fn, 1, 0)
		got := p.read(p.gpu, y)
		var worst, at float64
		bad := 0
		for i, v := range xs {
			want := c.ref(float64(v))
			if math.Abs(want) < 1e-30 {
				continue
			}
			e := math.Abs(float64(got[i])-want) / math.Abs(want)
			if e > worst {
				worst, at = e, float64(v)
			}
			if !(e <= c.rel+c.slope*math.Abs(float64(v))) {
				if bad == 0 {
					t.Errorf("act_%s(%g) = %g, want %g: relative error %.3g", c.fn, v, got[i], want, e)
				}
				bad++
			}
		}
		t.Logf("act_%-10s on [%g, %g]: max relative error %.3g at %g; %d points over tolerance", c.fn, c.lo, c.hi, worst, at, bad)
		p.gpu.Free(x, y)
	}
}

// TestActSinCosAccuracy checks act_sincos in absolute terms: ≤ 1e-7 on
// [−π, π] (all the timestep kernel feeds it) and, without the host's
// reduction, still ≤ 1.5e-7 up to |x| = 1e4.
func TestActSinCosAccuracy(t *testing.T) {
	t.Parallel()
	p := newParity(t)
	for _, c := range []struct {
		fn  string
		ref func(float64) float64
		lim float64
		tol float64
	}{
		{"sin", math.Sin, math.Pi, 1e-7},
		{"cos", math.Cos, math.Pi, 1e-7},
		{"sin", math.Sin, 1e4, 1.5e-7},
		{"cos", math.Cos, 1e4, 1.5e-7},
	} {
		const n = 200003
		xs := make([]float32, n)
		for i := range xs {
			xs[i] = float32(-c.lim + 2*c.lim*float64(i)/(n-1))
		}
		x := p.gpu.FromF32("x", xs, n)
		y := p.gpu.unary("math", x, c.fn, 1, 0)
		got := p.read(p.gpu, y)
		var worst, at float64
		for i, v := range xs {
			if e := math.Abs(float64(got[i]) - c.ref(float64(v))); e > worst {
				worst, at = e, float64(v)
			}
		}
		t.Logf("act_%s on ±%g: max abs error %.3g at %g", c.fn, c.lim, worst, at)
		if worst > c.tol {
			t.Errorf("act_%s on ±%g: abs error %.3g at %g > %g", c.fn, c.lim, worst, at, c.tol)
		}
		p.gpu.Free(x, y)
	}
}

func TestScaleParity(t *testing.T) {
	t.Parallel()
	p := newParity(t)
	for _, c := range []struct {
		shape []int
		s, k  float32
		off   int
	}{
		{[]int{1}, 2, 0, 0},
		{[]int{7, 131}, 0.18215, 0, 3},
		{[]int{2, 4, 9, 9}, 1 / 0.18215, -1, 0},
		{[]int{4099}, -0.5, 0.5, 1},
	} {
		x := p.randView(c.off, -4, 4, c.shape...)
		p.check(fmt.Sprintf("scale %v ·%g + %g", c.shape, c.s, c.k), p.ref.Scale(x.ref, c.s, c.k), p.gpu.Scale(x.gpu, c.s, c.k), tolRel, tolAbs)
		p.free(x)
	}
}

func TestGEGLUParity(t *testing.T) {
	t.Parallel()
	p := newParity(t)
	for _, c := range []struct {
		shape  []int
		lo, hi float32
		off    int
	}{
		{[]int{1, 2}, -3, 3, 0},
		{[]int{3, 5, 14}, -3, 3, 0},
		{[]int{2, 33, 200}, -8, 8, 9},
		{[]int{2, 64, 2560}, -5, 5, 0},
	} {
		x := p.randView(c.off, c.lo, c.hi, c.shape...)
		p.check(fmt.Sprintf("geglu %v off %d", c.shape, c.off), p.ref.GEGLU(x.ref), p.gpu.GEGLU(x.gpu), tolRel, tolAbs)
		p.free(x)
	}
}

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

func TestBinaryParity(t *testing.T) {
	t.Parallel()
	p := newParity(t)
	for _, c := range binaryCases {
		a := p.randView(c.aOff, -3, 3, c.a...)
		b := p.randView(c.bOff, -3, 3, c.b...)
		name := fmt.Sprintf("%v ∘ %v off %d,%d", c.a, c.b, c.aOff, c.bOff)
		p.check("add "+name, p.ref.Add(a.ref, b.ref), p.gpu.Add(a.gpu, b.gpu), tolRel, tolAbs)
		p.check("mul "+name, p.ref.Mul(a.ref, b.ref), p.gpu.Mul(a.gpu, b.gpu), tolRel, tolAbs)
		p.free(a, b)
	}
}

func TestMergeDims(t *testing.T) {
	for _, c := range []struct {
		shape, bstr, dims, str []int
	}{
		{[]int{2, 3, 4}, []int{12, 4, 1}, []int{24}, []int{1}},
		{[]int{2, 3, 4, 5}, []int{0, 0, 0, 1}, []int{24, 5}, []int{0, 1}},
		{[]int{2, 3, 4, 5}, []int{5, 0, 0, 1}, []int{2, 12, 5}, []int{5, 0, 1}},
		{[]int{2, 1, 4}, []int{4, 0, 1}, []int{8}, []int{1}},
		{[]int{1, 1}, []int{0, 0}, []int{1}, []int{0}},
		{[]int{3, 4}, []int{0, 0}, []int{12}, []int{0}},
	} {
		d, s := mergeDims(c.shape, c.bstr)
		if fmt.Sprint(d, s) != fmt.Sprint(c.dims, c.str) {
			t.Errorf("mergeDims(%v, %v) = %v, %v; want %v, %v", c.shape, c.bstr, d, s, c.dims, c.str)
		}
	}
}

func TestElementwiseDefaultLimits(t *testing.T) {
	t.Parallel()
	p := newParity(t, gpu.Options{DefaultLimits: true})
	for _, c := range binaryCases[4:7] {
		a := p.randView(c.aOff, -3, 3, c.a...)
		b := p.randView(c.bOff, -3, 3, c.b...)
		p.check(fmt.Sprintf("add (default limits) %v + %v", c.a, c.b), p.ref.Add(a.ref, b.ref), p.gpu.Add(a.gpu, b.gpu), tolRel, tolAbs)
	}
	x := p.randView(3, -4, 4, 2, 9, 22)
	p.check("geglu (default limits)", p.ref.GEGLU(x.ref), p.gpu.GEGLU(x.gpu), tolRel, tolAbs)
	p.check("gelu (default limits)", p.ref.Activate(x.ref, tensor.ActGELU), p.gpu.Activate(x.gpu, tensor.ActGELU), tolRel, tolAbs)
}

func TestElementwiseErrors(t *testing.T) {
	t.Parallel()
	p := newParity(t)
	a := p.rand(0, 1, 2, 3, 4)
	cases := map[string]func(*Backend){
		"no broadcast":     func(b *Backend) { b.Add(a.gpu, p.rand(0, 1, 3, 3).gpu) },
		"b of higher rank": func(b *Backend) { b.Mul(a.gpu, p.rand(0, 1, 1, 2, 3, 4).gpu) },
		"odd geglu":        func(b *Backend) { b.GEGLU(p.rand(0, 1, 2, 5).gpu) },
		"nil activate":     func(b *Backend) { b.Activate(nil, tensor.ActSiLU) },
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
