// Resampling tests that do not need the goldens: exact cases that follow
// from the fixed-point two-pass scheme, and a float64 oracle for the
// weights (golden_test.go holds the bit-exact check against PIL).
package imageproc

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randomRGB(w, h int, seed uint64) *RGB {
	r := rand.New(rand.NewPCG(seed, 1))
	m := NewRGB(w, h)
	for i := range m.Pix {
		m.Pix[i] = uint8(r.IntN(256))
	}
	return m
}

// TestResizeBox2x: box filter halving = two rounded pair means (horizontal,
// then vertical), rounding half up.
func TestResizeBox2x(t *testing.T) {
	m := randomRGB(8, 6, 1)
	got, err := Resize(m, 4, 3, Box)
	if err != nil {
		t.Fatal(err)
	}
	at := func(x, y, c int) int { return int(m.Pix[3*(y*8+x)+c]) }
	for y := 0; y < 3; y++ {
		for x := 0; x < 4; x++ {
			for c := 0; c < 3; c++ {
				top := (at(2*x, 2*y, c) + at(2*x+1, 2*y, c) + 1) / 2
				bot := (at(2*x, 2*y+1, c) + at(2*x+1, 2*y+1, c) + 1) / 2
				if want := (top + bot + 1) / 2; int(got.Pix[3*(y*4+x)+c]) != want {
					t.Fatalf("(%d,%d,%d) = %d, want %d", x, y, c, got.Pix[3*(y*4+x)+c], want)
				}
			}
		}
	}
}

// TestResizeConstant: weights sum to one, so flat images stay flat.
func TestResizeConstant(t *testing.T) {
	for _, f := range []Filter{Bicubic, Bilinear, Lanczos, Hamming, Box} {
		for _, sz := range [][4]int{{300, 200, 224, 224}, {17, 5, 224, 224}, {224, 224, 100, 301}, {1, 1, 7, 3}} {
			m := NewRGB(sz[0], sz[1])
			for i := range m.Pix {
				m.Pix[i] = []uint8{0, 128, 255}[i%3]
			}
			got, err := Resize(m, sz[2], sz[3], f)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range got.Pix {
				if v != []uint8{0, 128, 255}[i%3] {
					t.Fatalf("%v %v: value %d at %d", f, sz, v, i)
				}
			}
		}
	}
}

// resizeFloat is the plain oracle: the same antialiased kernel in float64,
// no fixed point and no rounding; the intermediate is clamped to 0..255.
func resizeFloat(m *RGB, w, h int, filter func(float64) float64, support float64) []float64 {
	weights := func(in, out int) [][]float64 { // [out][in]
		scale := float64(in) / float64(out)
		fs := math.Max(scale, 1)
		wt := make([][]float64, out)
		for o := range wt {
			wt[o] = make([]float64, in)
			center := (float64(o) + 0.5) * scale
			sum := 0.0
			for i := 0; i < in; i++ {
				if d := float64(i) + 0.5 - center; math.Abs(d) < support*fs+0.5 {
					wt[o][i] = filter(d / fs)
					sum += wt[o][i]
				}
			}
			for i := range wt[o] {
				wt[o][i] /= sum
			}
		}
		return wt
	}
	wx, wy := weights(m.Width, w), weights(m.Height, h)
	// Horizontal pass, clamped to the 8-bit range like Pillow's intermediate.
	tmp := make([]float64, 3*w*m.Height)
	for sy := 0; sy < m.Height; sy++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				s := 0.0
				for sx := 0; sx < m.Width; sx++ {
					s += wx[x][sx] * float64(m.Pix[3*(sy*m.Width+sx)+c])
				}
				tmp[3*(sy*w+x)+c] = math.Min(255, math.Max(0, s))
			}
		}
	}
	out := make([]float64, 3*w*h)
	for y := 0; y < h; y++ {
		for i := 0; i < 3*w; i++ {
			s := 0.0
			for sy := 0; sy < m.Height; sy++ {
				s += wy[y][sy] * tmp[3*w*sy+i]
			}
			out[3*w*y+i] = s
		}
	}
	return out
}

// TestResizeVersusFloat: the fixed-point result stays within 1.5 levels of
// the float computation (rounding of the 8-bit intermediate, amplified by
// the kernel's negative lobes).
func TestResizeVersusFloat(t *testing.T) {
	for _, c := range [][4]int{{53, 41, 24, 24}, {20, 15, 37, 29}, {40, 9, 13, 21}} {
		m := randomRGB(c[0], c[1], uint64(c[0]))
		got, err := Resize(m, c[2], c[3], Bicubic)
		if err != nil {
			t.Fatal(err)
		}
		want := resizeFloat(m, c[2], c[3], bicubicFilter, 2)
		worst := 0.0
		for i, v := range want {
			clamped := math.Min(255, math.Max(0, v))
			worst = math.Max(worst, math.Abs(float64(got.Pix[i])-clamped))
		}
		if worst > 1.5 {
			t.Errorf("%v: max difference %.2f from the float oracle", c, worst)
		}
		t.Logf("%v: max difference %.2f", c, worst)
	}
}

func TestResizeSameSizeCopies(t *testing.T) {
	m := randomRGB(5, 4, 3)
	got, err := Resize(m, 5, 4, Bicubic)
	if err != nil {
		t.Fatal(err)
	}
	if &got.Pix[0] == &m.Pix[0] || string(got.Pix) != string(m.Pix) {
		t.Error("same-size resize is not an equal copy")
	}
}

func TestResizeErrors(t *testing.T) {
	m := NewRGB(4, 4)
	for _, c := range []struct {
		w, h int
		f    Filter
	}{{0, 4, Bicubic}, {4, -1, Bicubic}, {4, 4, 0}, {4, 4, 6}} {
		if _, err := Resize(m, c.w, c.h, c.f); err == nil {
			t.Errorf("Resize to %d×%d with %v accepted", c.w, c.h, c.f)
		}
	}
}

func BenchmarkResize4000x3000(b *testing.B) {
	m := randomRGB(4000, 3000, 5)
	b.SetBytes(int64(len(m.Pix)))
	for b.Loop() {
		if _, err := Resize(m, 224, 224, Bicubic); err != nil {
			b.Fatal(err)
		}
	}
}
