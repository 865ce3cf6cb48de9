package rng

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"runtime"
	"slices"
	"sort"
	"testing"
)

// Random123 kat_vectors, the three "philox4x32 10" lines (counter, key, result).
func TestPhilox4x32KnownAnswers(t *testing.T) {
	cases := []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff}, [4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0}, [4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	}
	for _, c := range cases {
		if got := Philox4x32(c.ctr, c.key); got != c.want {
			t.Errorf("Philox4x32(%08x, %08x) = %08x, want %08x", c.ctr, c.key, got, c.want)
		}
	}
}

// Known answers of this package, computed once on linux/amd64 and committed;
// the same test run under GOARCH=wasm (and arm64) proves the stream is the
// same bits there. The first two values were cross-checked with an
// independent float64 Box–Muller (Python's math.log/cos/sin) on the Random123
// block for key 0, counter 0.
func TestNormalKnownAnswers(t *testing.T) {
	cases := []struct {
		name   string
		seed   uint64
		stream uint64
		offset uint64
		want   []uint32
	}{
		{"seed0", 0, 0, 0, []uint32{
			0xbdf8de6b, // -0.12151798
			0xbfaccddf, // -1.3500327
			0xbda7adaa, // -0.08187421
			0xbe640dd8, // -0.22270906
			0x3fe361df, // 1.7764243
			0x400b1af7, // 2.1735208
			0xbf0c1ebf, // -0.54734415
			0xbed8563c, // -0.42253292
		}},
		// Odd offset past 2³³: the block counter uses both 32-bit words,
		// and a non-zero stream id the other two.
		{"offset", 0x0123456789ABCDEF, 7, 1<<33 + 1, []uint32{
			0xbf2ce24c, // -0.675328
			0x3dd95ff8, // 0.10614008
			0xbfdf54eb, // -1.744779
			0xbea07efa, // -0.31346875
		}},
	}
	for _, c := range cases {
		got := make([]float32, len(c.want))
		FillNormal(got, c.seed, c.stream, c.offset)
		for i, w := range c.want {
			if b := math.Float32bits(got[i]); b != w {
				t.Errorf("%s[%d] = %08x (%v), want %08x (%v) [%s/%s]", c.name, i, b, got[i], w, math.Float32frombits(w), runtime.GOOS, runtime.GOARCH)
			}
		}
	}
}

// A digest of 65536 values covers every branch of ln and sin/cos many times.
func TestNormalDigest(t *testing.T) {
	const want = "b8851a9217e78e161bc16c445adbf86016bf44a5a2b9d15baf95bbd6c1fb7817"
	h := sha256.New()
	var b [4]byte
	for _, x := range Normal(2024, 1<<16) {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(x))
		h.Write(b[:])
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("sha256 of Normal(2024, 65536) = %s, want %s [%s/%s]", got, want, runtime.GOOS, runtime.GOARCH)
	} else {
		t.Logf("Normal(2024, 65536) digest matches on %s/%s", runtime.GOOS, runtime.GOARCH)
	}
}

func TestFillNormalPieces(t *testing.T) {
	whole := Normal(99, 101)
	for _, cut := range []int{0, 1, 2, 3, 50, 100, 101} {
		a := make([]float32, cut)
		b := make([]float32, 101-cut)
		FillNormal(a, 99, 0, 0)
		FillNormal(b, 99, 0, uint64(cut))
		if !slices.Equal(append(a, b...), whole) {
			t.Errorf("cut at %d differs from one call", cut)
		}
	}
	// Seeds differing only in the high word, and streams, are different.
	first := func(seed, stream uint64) float32 {
		v := make([]float32, 1)
		FillNormal(v, seed, stream, 0)
		return v[0]
	}
	vals := []float32{first(1, 0), first(1<<32, 0), first(0, 0), first(0, 1), first(0, 1<<32)}
	for i := range vals {
		for j := i + 1; j < len(vals); j++ {
			if vals[i] == vals[j] {
				t.Errorf("streams %d and %d start with the same value %v", i, j, vals[i])
			}
		}
	}
}

func TestLnUnit(t *testing.T) {
	if math.Float64bits(ln2Hi) != 0x3fe62e42fee00000 || math.Float64bits(ln2Lo) != 0x3dea39ef35793c76 {
		t.Fatal("ln 2 split constants are not fdlibm's")
	}
	us := []float64{1, 0.5, 0x1p-53, 1 - 0x1p-53, math.Sqrt2 / 2, math.Nextafter(math.Sqrt2/2, 0), 0.1, 0.7, 0.3333333333333333}
	for i := range 2000 {
		us = append(us, (float64(i)+0.5)/2000, math.Ldexp(float64(i+1)/2001, -i%50))
	}
	worst := 0.0
	for _, u := range us {
		got, want := lnUnit(u), math.Log(u)
		e := math.Abs(got - want)
		if want != 0 {
			e /= math.Abs(want)
		}
		worst = max(worst, e)
		if e > 4e-16 {
			t.Errorf("lnUnit(%v) = %v, want %v (rel %.3g)", u, got, want, e)
		}
	}
	if lnUnit(1) != 0 {
		t.Errorf("lnUnit(1) = %v", lnUnit(1))
	}
	t.Logf("lnUnit: max relative deviation from math.Log %.3g", worst)
}

func TestSinCosTurn(t *testing.T) {
	js := []uint64{0, 1, 1 << 50, 1<<50 + 1, 1<<51 - 1, 1 << 51, 1 << 52, 3 << 51, 1<<53 - 1}
	for i := range 4000 {
		js = append(js, uint64(i)*0x9E3779B97F4A7>>2&(1<<53-1))
	}
	worst := 0.0
	for _, j := range js {
		s, c := sinCosTurn(j)
		ws, wc := math.Sincos(2 * math.Pi * float64(j) * 0x1p-53)
		e := max(math.Abs(s-ws), math.Abs(c-wc))
		worst = max(worst, e)
		if e > 1e-15 {
			t.Errorf("sinCosTurn(%d) = %v, %v; want %v, %v", j, s, c, ws, wc)
		}
	}
	if s, c := sinCosTurn(0); s != 0 || c != 1 {
		t.Errorf("sinCosTurn(0) = %v, %v", s, c)
	}
	t.Logf("sinCosTurn: max deviation from math.Sincos %.3g", worst)
}

// normalCDF is Φ(x) (test only).
func normalCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

func TestNormalStatistics(t *testing.T) {
	const n = 1 << 17
	v := Normal(12345, n)
	var s1, s2, s3, s4, in1, pair float64
	for i, x := range v {
		f := float64(x)
		s1 += f
		s2 += f * f
		s3 += f * f * f
		s4 += f * f * f * f
		if math.Abs(f) < 1 {
			in1++
		}
		if i%2 == 1 {
			pair += float64(v[i-1]) * f
		}
	}
	mean, m2 := s1/n, s2/n
	vr := m2 - mean*mean
	skew, kurt := s3/n, s4/n
	frac := in1 / n
	corr := pair / (n / 2)
	t.Logf("mean %.4g var %.5g E[z³] %.4g E[z⁴] %.4g P(|z|<1) %.5g pair corr %.4g", mean, vr, skew, kurt, frac, corr)
	sd := 1 / math.Sqrt(n)
	checks := []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"mean", mean, 0, 5 * sd},
		{"variance", vr, 1, 5 * math.Sqrt2 * sd},
		{"third moment", skew, 0, 5 * math.Sqrt(15) * sd},
		{"fourth moment", kurt, 3, 5 * math.Sqrt(96) * sd},
		{"P(|z|<1)", frac, 0.6826894921370859, 5 * math.Sqrt(0.6827*0.3173) * sd},
		{"pair correlation", corr, 0, 5 * math.Sqrt2 * sd},
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > c.tol {
			t.Errorf("%s = %.5g, want %.5g ± %.3g", c.name, c.got, c.want, c.tol)
		}
	}
	// Kolmogorov–Smirnov against Φ: D·√n < 1.95 at the 0.1 % level.
	sorted := make([]float64, n)
	for i, x := range v {
		sorted[i] = float64(x)
	}
	sort.Float64s(sorted)
	d := 0.0
	for i, x := range sorted {
		p := normalCDF(x)
		d = max(d, math.Abs(p-float64(i)/n), math.Abs(float64(i+1)/n-p))
	}
	t.Logf("KS D·√n = %.3f", d*math.Sqrt(n))
	if d*math.Sqrt(n) > 1.95 {
		t.Errorf("Kolmogorov–Smirnov D·√n = %.3f > 1.95", d*math.Sqrt(n))
	}
}
