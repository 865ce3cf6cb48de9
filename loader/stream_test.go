package loader

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/x448/float16"

	"harmony/engine/tensor"
)

func TestMakePieces(t *testing.T) {
	sp := func(a, b int64) fileSpan { return fileSpan{off: a, end: b} }
	key := func(a, b int64) string { return fmt.Sprint(a, "-", b) }
	cases := []struct {
		name  string
		spans []fileSpan
		size  int64
		want  []string
	}{
		{"joined", []fileSpan{sp(0, 10), sp(12, 20), sp(20, 30)}, 100, []string{"0-30"}},
		{"split by size", []fileSpan{sp(0, 10), sp(12, 20), sp(20, 30)}, 15, []string{"0-15", "15-30"}},
		{"big span", []fileSpan{sp(5, 50)}, 20, []string{"5-25", "25-45", "45-50"}},
		{"gap", []fileSpan{sp(0, 10), sp(10+maxGap+1, 11+maxGap+1)}, 1 << 30, []string{"0-10", fmt.Sprint(11+maxGap, "-", 12+maxGap)}},
		{"empty spans", []fileSpan{sp(0, 0), sp(3, 3), sp(4, 8)}, 100, []string{"4-8"}},
		{"gap past size", []fileSpan{sp(0, 10), sp(25, 30)}, 20, []string{"0-10", "25-30"}},
	}
	for _, c := range cases {
		got := makePieces(c.spans, c.size, key)
		var s []string
		for _, p := range got {
			s = append(s, p.key)
		}
		if fmt.Sprint(s) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, s, c.want)
		}
	}
}

// recTarget records writes and checks the GPU's 4-byte offset rule.
type recTarget struct {
	t   *testing.T
	buf []byte
}

func (r *recTarget) alloc(tp *tensorPlan) error { return nil }
func (r *recTarget) check() error               { return nil }
func (r *recTarget) write(tp *tensorPlan, off int64, data []byte) error {
	if off%4 != 0 {
		r.t.Fatalf("write at %d", off)
	}
	copy(r.buf[off:], data)
	return nil
}

// TestTensorSink feeds tensors in pieces of every awkward size and checks
// the converted result against a one-shot conversion.
func TestTensorSink(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, from := range []DType{F32, F16, BF16, F64} {
		for _, to := range []tensor.DType{tensor.F32, tensor.F16} {
			for _, n := range []int{1, 2, 3, 7, 1000} {
				src := make([]byte, n*from.Size())
				for i := 0; i < n; i++ {
					v := float32(rng.NormFloat64())
					switch from {
					case F32:
						binary.LittleEndian.PutUint32(src[4*i:], math.Float32bits(v))
					case F16:
						binary.LittleEndian.PutUint16(src[2*i:], float16.Fromfloat32(v).Bits())
					case BF16:
						binary.LittleEndian.PutUint16(src[2*i:], uint16(math.Float32bits(v)>>16))
					case F64:
						binary.LittleEndian.PutUint64(src[8*i:], math.Float64bits(float64(v)*1.0000001))
					}
				}
				want := make([]byte, n*to.Size())
				if err := convert(want, to, src, from); err != nil {
					t.Fatal(err)
				}
				for _, step := range []int{1, 3, 5, 64} {
					tp := &tensorPlan{info: TensorInfo{Name: "x", DType: from, Shape: []int{n}, Size: int64(len(src))}, out: to}
					rt := &recTarget{t: t, buf: make([]byte, len(want))}
					s := newTensorSink(tp, rt, &conv{chunk: 64, buf: make([]byte, 64)})
					for i := 0; i < len(src); i += step {
						if err := s.write(src[i:min(i+step, len(src))]); err != nil {
							t.Fatal(err)
						}
					}
					if err := s.close(); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(rt.buf, want) {
						t.Fatalf("%s→%s n=%d step=%d: output differs", from, to, n, step)
					}
				}
			}
		}
	}
}

// TestConvertRounding: f32 → f16 rounds to nearest even, including
// subnormals, overflow to infinity and NaN.
func TestConvertRounding(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3c00},
		{65504, 0x7bff},
		{65520, 0x7c00},                           // rounds up to +Inf
		{float32(math.Ldexp(1, -24)), 0x0001},     // smallest subnormal
		{float32(math.Ldexp(1, -25)), 0x0000},     // halfway to 0: even
		{float32(math.Ldexp(3, -26)), 0x0001},     // 0.75 ulp rounds up
		{1 + float32(math.Ldexp(1, -11)), 0x3c00}, // halfway: even (down)
		{1 + float32(math.Ldexp(3, -11)), 0x3c02}, // halfway: even (up)
		{float32(math.Inf(-1)), 0xfc00},
	}
	for _, c := range cases {
		src := make([]byte, 4)
		binary.LittleEndian.PutUint32(src, math.Float32bits(c.in))
		dst := make([]byte, 2)
		convert(dst, tensor.F16, src, F32)
		if got := binary.LittleEndian.Uint16(dst); got != c.want {
			t.Errorf("%g: %#04x, want %#04x", c.in, got, c.want)
		}
	}
	src := make([]byte, 4)
	binary.LittleEndian.PutUint32(src, 0x7fc00000)
	dst := make([]byte, 2)
	convert(dst, tensor.F16, src, F32)
	if h := binary.LittleEndian.Uint16(dst); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("NaN became %#04x", h)
	}
}

// TestF32ToF16 compares the fast conversion with float16.Fromfloat32 on a
// spread of bit patterns, every exponent with the rounding-critical
// mantissas (an exhaustive run over all 2^32 patterns agreed too).
func TestF32ToF16(t *testing.T) {
	check := func(f uint32) {
		got, want := f32ToF16(f), float16.Fromfloat32(math.Float32frombits(f)).Bits()
		if got == want {
			return
		}
		if math.IsNaN(float64(math.Float32frombits(f))) && got&0x7c00 == 0x7c00 && got&0x3ff != 0 {
			return // NaN payloads may differ
		}
		t.Fatalf("%08x: %04x, want %04x", f, got, want)
	}
	for b := uint64(0); b < 1<<32; b += 9973 {
		check(uint32(b))
	}
	for e := uint32(0); e < 256; e++ {
		for _, m := range []uint32{0, 1, 0xfff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x2fff, 0x3000, 0x7fffff, 0x7ff000, 0x400000, 0x400001, 0x3fffff} {
			for _, s := range []uint32{0, 1 << 31} {
				check(s | e<<23 | m)
			}
		}
	}
}
