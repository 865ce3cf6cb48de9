// Conversion of decoded images to 8-bit RGB with PIL's convert("RGB")
// semantics, the reference processor's first step: alpha is dropped, not composited
// (straight, non-premultiplied colour is kept); palettes are looked up;
// grey is replicated; 16-bit colour keeps the high byte (PIL's ";16B"
// unpackers), while 16-bit grey clips to 255 like PIL's I;16 → RGB.
package imageproc

import (
	"image"
	"image/color"
)

// RGB is an 8-bit RGB image: rows top to bottom, 3 bytes per pixel (HWC).
type RGB struct {
	Width  int     // pixels per row
	Height int     // rows
	Pix    []uint8 // R, G, B of each pixel, row-major; len 3·Width·Height
}

// NewRGB returns a black w×h image.
func NewRGB(w, h int) *RGB {
	return &RGB{Width: w, Height: h, Pix: make([]uint8, 3*w*h)}
}

// toRGB converts any decoded image. The common decoder outputs have direct
// loops; anything else goes through color.NRGBAModel.
func toRGB(m image.Image) *RGB {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	out := NewRGB(w, h)
	o := out.Pix
	switch m := m.(type) {
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				copy(o[3*(y*w+x):3*(y*w+x)+3], row[4*x:4*x+3])
			}
		}
	case *image.RGBA: // premultiplied: un-premultiply where not opaque
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				p := row[4*x : 4*x+4]
				i := 3 * (y*w + x)
				if p[3] == 255 {
					o[i], o[i+1], o[i+2] = p[0], p[1], p[2]
				} else {
					c := color.NRGBAModel.Convert(color.RGBA{p[0], p[1], p[2], p[3]}).(color.NRGBA)
					o[i], o[i+1], o[i+2] = c.R, c.G, c.B
				}
			}
		}
	case *image.NRGBA64: // big-endian 16-bit samples: keep the high bytes
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				i := 3 * (y*w + x)
				o[i], o[i+1], o[i+2] = row[8*x], row[8*x+2], row[8*x+4]
			}
		}
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				i := 3 * (y*w + x)
				o[i], o[i+1], o[i+2] = row[x], row[x], row[x]
			}
		}
	case *image.Gray16: // PIL opens 16-bit grey as I;16, whose RGB conversion clips at 255
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				v := row[2*x+1]
				if row[2*x] != 0 {
					v = 255
				}
				i := 3 * (y*w + x)
				o[i], o[i+1], o[i+2] = v, v, v
			}
		}
	case *image.Paletted:
		lut := paletteRGB(m.Palette, nil)
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				copy(o[3*(y*w+x):3*(y*w+x)+3], lut[row[x]][:])
			}
		}
	case *image.YCbCr:
		ycbcrToRGB(m, o)
	case *image.NYCbCrA:
		ycbcrToRGB(&m.YCbCr, o)
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.NRGBAModel.Convert(m.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
				i := 3 * (y*w + x)
				o[i], o[i+1], o[i+2] = c.R, c.G, c.B
			}
		}
	}
	return out
}

// ycbcrToRGB converts with the JFIF equations of color.YCbCrToRGB, chroma
// taken from the sample that covers each pixel (no smoothing).
func ycbcrToRGB(m *image.YCbCr, o []uint8) {
	b := m.Bounds()
	w := b.Dx()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			yi, ci := m.YOffset(x, y), m.COffset(x, y)
			r, g, bb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			i := 3 * ((y-b.Min.Y)*w + (x - b.Min.X))
			o[i], o[i+1], o[i+2] = r, g, bb
		}
	}
}

// paletteRGB returns the straight RGB of each palette entry (256 entries;
// indices past the palette are black). Go's GIF decoder replaces the
// transparent entry by transparent black; where orig (the file's global
// table) is given and the frame uses it, the stored colour is restored,
// since PIL keeps it.
func paletteRGB(p color.Palette, orig color.Palette) [256][3]uint8 {
	var lut [256][3]uint8
	useOrig := orig != nil && sameExceptTransparent(p, orig)
	for i, c := range p {
		if i >= len(lut) {
			break
		}
		if useOrig && i < len(orig) && isTransparentBlack(c) {
			c = orig[i]
		}
		n := color.NRGBAModel.Convert(c).(color.NRGBA)
		lut[i] = [3]uint8{n.R, n.G, n.B}
	}
	return lut
}

func isTransparentBlack(c color.Color) bool {
	r, g, b, a := c.RGBA()
	return r|g|b|a == 0
}

// sameExceptTransparent reports whether p is orig with some entries made
// transparent black (and possibly extended by such entries).
func sameExceptTransparent(p, orig color.Palette) bool {
	for i, c := range p {
		if isTransparentBlack(c) {
			continue
		}
		if i >= len(orig) {
			return false
		}
		r1, g1, b1, a1 := c.RGBA()
		r2, g2, b2, a2 := orig[i].RGBA()
		if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
			return false
		}
	}
	return true
}

// gifFirstFrame converts a GIF's first frame on a canvas of the logical
// screen size. Like Pillow, pixels outside the frame take the colour of the
// transparent index when there is one, else of index 0.
func gifFirstFrame(m image.Image, cfg image.Config) *RGB {
	pm, ok := m.(*image.Paletted)
	if !ok {
		return toRGB(m)
	}
	global, _ := cfg.ColorModel.(color.Palette)
	lut := paletteRGB(pm.Palette, global)
	screen := image.Rect(0, 0, cfg.Width, cfg.Height)
	fill := 0
	for i, c := range pm.Palette {
		if isTransparentBlack(c) {
			fill = i
			break
		}
	}
	out := NewRGB(cfg.Width, cfg.Height)
	for i := 0; i < len(out.Pix); i += 3 {
		copy(out.Pix[i:i+3], lut[fill][:])
	}
	r := pm.Bounds().Intersect(screen)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			i := 3 * (y*cfg.Width + x)
			copy(out.Pix[i:i+3], lut[pm.Pix[pm.PixOffset(x, y)]][:])
		}
	}
	return out
}
