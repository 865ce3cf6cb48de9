// PIL-compatible antialiased resampling (the reference image's bicubic
// resize to 224×224),
// reimplemented from the behaviour of Pillow's libImaging/Resample.c so the
// resized uint8 image matches the reference bit for bit:
//
//   - each output pixel xx covers the input interval centred at
//     (xx+0.5)·scale, scale = in/out; when downscaling the filter support
//     is stretched by scale (antialiasing), never shrunk when upscaling;
//   - per output pixel, weights filter((x − center + 0.5)/filterscale) over
//     input pixels [round(center−support), round(center+support)) clamped
//     to the image, normalized to sum 1, then converted to fixed point with
//     22 fractional bits (rounded half away from zero);
//   - a horizontal pass over only the rows the vertical pass will read,
//     then a vertical pass; each accumulates from 2^21 (the rounding half),
//     and the result is shifted right by 22 and clamped to 0..255, so the
//     intermediate image is 8-bit;
//   - a pass whose size does not change is skipped.
//
// Float expressions keep Pillow's (C, double) evaluation order; explicit
// float64 conversions stop Go from fusing multiply-adds on FMA machines.
package imageproc

import (
	"fmt"
	"math"
)

// Filter is a PIL resampling filter, numbered like PIL.Image.Resampling.
type Filter int

// PIL's resampling filters (NEAREST = 0 is a different algorithm, not offered).
const (
	Lanczos  Filter = 1
	Bilinear Filter = 2
	Bicubic  Filter = 3
	Box      Filter = 4
	Hamming  Filter = 5
)

func (f Filter) String() string {
	switch f {
	case Lanczos:
		return "lanczos"
	case Bilinear:
		return "bilinear"
	case Bicubic:
		return "bicubic"
	case Box:
		return "box"
	case Hamming:
		return "hamming"
	}
	return fmt.Sprintf("filter(%d)", int(f))
}

// kernel returns the filter function and its support (radius at scale 1).
func (f Filter) kernel() (func(float64) float64, float64, bool) {
	switch f {
	case Box:
		return boxFilter, 0.5, true
	case Bilinear:
		return bilinearFilter, 1, true
	case Hamming:
		return hammingFilter, 1, true
	case Bicubic:
		return bicubicFilter, 2, true
	case Lanczos:
		return lanczosFilter, 3, true
	}
	return nil, 0, false
}

func boxFilter(x float64) float64 {
	if x > -0.5 && x <= 0.5 {
		return 1
	}
	return 0
}

func bilinearFilter(x float64) float64 {
	x = math.Abs(x)
	if x < 1 {
		return 1 - x
	}
	return 0
}

func hammingFilter(x float64) float64 {
	x = math.Abs(x)
	if x == 0 {
		return 1
	}
	if x >= 1 {
		return 0
	}
	x = float64(x * math.Pi)
	// Pillow writes the constants as C floats: 0.54f, 0.46f.
	return float64(math.Sin(x)/x) * float64(float64(float32(0.54))+float64(float64(float32(0.46))*math.Cos(x)))
}

// bicubicFilter is the cubic convolution kernel with a = −0.5.
func bicubicFilter(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	if x < 1 {
		return float64(float64(float64((a+2)*x)-(a+3))*x)*x + 1
	}
	if x < 2 {
		return float64(float64(float64(float64(x-5)*x)+8)*x-4) * a
	}
	return 0
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x = float64(x * math.Pi)
	return math.Sin(x) / x
}

func lanczosFilter(x float64) float64 {
	if x >= -3 && x < 3 {
		return sinc(x) * sinc(x/3)
	}
	return 0
}

// precisionBits is Pillow's PRECISION_BITS: 32 − 8 (result) − 2 (headroom
// for negative lobes and sums above 1).
const precisionBits = 32 - 8 - 2

// coeffs are the fixed-point weights of one pass.
type coeffs struct {
	ksize  int     // weights per output pixel (stride of k)
	bounds []int   // per output pixel: first input index, number of inputs
	k      []int32 // weights, ksize per output pixel
}

// precompute builds the weights for resizing inSize samples to outSize.
func precompute(inSize, outSize int, filter func(float64) float64, support float64) coeffs {
	scale := float64(float32(inSize)) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support *= filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{ksize: ksize, bounds: make([]int, 2*outSize), k: make([]int32, outSize*ksize)}
	w := make([]float64, ksize)
	ss := 1 / filterscale
	for xx := 0; xx < outSize; xx++ {
		center := float64(float64(xx)+0.5) * scale
		xmin := int(center - support + 0.5) // C (int): truncation toward zero
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			w[x] = filter(float64(float64(x+xmin)-center+0.5) * ss)
			ww += w[x]
		}
		k := c.k[xx*ksize : (xx+1)*ksize]
		for x := 0; x < xmax; x++ {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				k[x] = int32(-0.5 + float64(v*(1<<precisionBits)))
			} else {
				k[x] = int32(0.5 + float64(v*(1<<precisionBits)))
			}
		}
		c.bounds[2*xx], c.bounds[2*xx+1] = xmin, xmax
	}
	return c
}

// clip8 turns an accumulator into a byte: drop the fraction, clamp.
func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// Resize resamples m to w×h with a PIL filter, exactly as Pillow's
// Image.resize((w, h), filter) does on an RGB image.
func Resize(m *RGB, w, h int, f Filter) (*RGB, error) {
	filter, support, ok := f.kernel()
	if !ok {
		return nil, fmt.Errorf("imageproc: resampling filter %v not supported", f)
	}
	if w <= 0 || h <= 0 || m.Width <= 0 || m.Height <= 0 {
		return nil, fmt.Errorf("imageproc: cannot resize %d×%d to %d×%d", m.Width, m.Height, w, h)
	}
	vert := precompute(m.Height, h, filter, support)
	src := m
	if w != m.Width {
		// Only the rows the vertical pass reads.
		first := vert.bounds[0]
		last := vert.bounds[2*h-2] + vert.bounds[2*h-1]
		if h == m.Height { // no vertical pass follows: every row
			first, last = 0, m.Height
		}
		horiz := precompute(m.Width, w, filter, support)
		src = resampleHorizontal(m, first, last, horiz)
		if h != m.Height {
			for i := 0; i < h; i++ {
				vert.bounds[2*i] -= first
			}
		}
	}
	if h != m.Height {
		return resampleVertical(src, h, vert), nil
	}
	if src == m { // neither pass ran: copy, like Pillow
		out := NewRGB(m.Width, m.Height)
		copy(out.Pix, m.Pix)
		return out, nil
	}
	return src, nil
}

// resampleHorizontal resizes rows first..last-1 of m to c's output width.
func resampleHorizontal(m *RGB, first, last int, c coeffs) *RGB {
	outW := len(c.bounds) / 2
	out := NewRGB(outW, last-first)
	for y := first; y < last; y++ {
		in := m.Pix[3*y*m.Width : 3*(y+1)*m.Width]
		o := out.Pix[3*(y-first)*outW : 3*(y-first+1)*outW]
		for xx := 0; xx < outW; xx++ {
			xmin, n := c.bounds[2*xx], c.bounds[2*xx+1]
			k := c.k[xx*c.ksize : xx*c.ksize+n]
			s0, s1, s2 := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
			px := in[3*xmin : 3*(xmin+n)]
			for x, kx := range k {
				s0 += int32(px[3*x]) * kx
				s1 += int32(px[3*x+1]) * kx
				s2 += int32(px[3*x+2]) * kx
			}
			o[3*xx], o[3*xx+1], o[3*xx+2] = clip8(s0), clip8(s1), clip8(s2)
		}
	}
	return out
}

// resampleVertical resizes the columns of m to outH rows.
func resampleVertical(m *RGB, outH int, c coeffs) *RGB {
	w := m.Width
	out := NewRGB(w, outH)
	stride := 3 * w
	for yy := 0; yy < outH; yy++ {
		ymin, n := c.bounds[2*yy], c.bounds[2*yy+1]
		k := c.k[yy*c.ksize : yy*c.ksize+n]
		o := out.Pix[yy*stride : (yy+1)*stride]
		for i := 0; i < stride; i++ { // each channel of each pixel
			s := int32(1 << (precisionBits - 1))
			for y, ky := range k {
				s += int32(m.Pix[(ymin+y)*stride+i]) * ky
			}
			o[i] = clip8(s)
		}
	}
	return out
}
