// Decoding tests: every format from small synthesized files (WebP from a
// hand-assembled lossless bitstream, as Go has no WebP encoder), PIL's RGB
// conversion rules, and the typed errors.
package imageproc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// pattern returns a w×h opaque image with a distinct colour per pixel.
func pattern(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetNRGBA(x, y, color.NRGBA{uint8(40*x + 3), uint8(50*y + 7), uint8(11*x + 13*y), 255})
		}
	}
	return m
}

// wantRGB returns the RGB bytes of an NRGBA image.
func wantRGB(m *image.NRGBA) []uint8 {
	var out []uint8
	for i := 0; i < len(m.Pix); i += 4 {
		out = append(out, m.Pix[i:i+3]...)
	}
	return out
}

func encode(t *testing.T, f func(*bytes.Buffer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := f(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bitWriter packs bits LSB first, as VP8L reads them.
type bitWriter struct {
	buf []byte
	acc uint64
	n   uint
}

func (w *bitWriter) write(v uint64, bits uint) {
	w.acc |= v << w.n
	w.n += bits
	for w.n >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.n -= 8
	}
}

func (w *bitWriter) bytes() []byte {
	if w.n > 0 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc, w.n = 0, 0
	}
	return w.buf
}

// losslessWebP assembles a VP8L image whose pixels are (r, g0 or g1, b)
// with g0 < g1: no transforms, no colour cache, one prefix-code group of
// "simple" codes (two green symbols, one symbol each for red, blue, alpha
// and distance), then one bit per pixel selecting the green value.
func losslessWebP(w, h int, r, g0, g1, b uint8, bits []int) []byte {
	var bw bitWriter
	bw.write(0x2f, 8)                      // VP8L signature
	bw.write(uint64(w-1), 14)              // width − 1
	bw.write(uint64(h-1), 14)              // height − 1
	bw.write(0, 1)                         // alpha not used
	bw.write(0, 3)                         // version 0
	bw.write(0, 1)                         // no transform
	bw.write(0, 1)                         // no colour cache
	bw.write(0, 1)                         // no meta prefix codes
	bw.write(1, 1)                         // green: simple code
	bw.write(1, 1)                         //   two symbols
	bw.write(1, 1)                         //   8-bit symbols
	bw.write(uint64(g0), 8)                //   symbol 0 (code 0)
	bw.write(uint64(g1), 8)                //   symbol 1 (code 1)
	for _, v := range []uint8{r, b, 255} { // red, blue, alpha: one symbol each
		bw.write(1, 1)
		bw.write(0, 1)
		bw.write(1, 1)
		bw.write(uint64(v), 8)
	}
	bw.write(1, 1) // distance: simple, one 1-bit symbol 0
	bw.write(0, 1)
	bw.write(0, 1)
	bw.write(0, 1)
	for _, bit := range bits {
		bw.write(uint64(bit), 1)
	}
	data := bw.bytes()
	chunk := append([]byte("VP8L"), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
	chunk = append(chunk, data...)
	if len(data)%2 == 1 {
		chunk = append(chunk, 0)
	}
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(4+len(chunk)))...)
	return append(append(out, "WEBP"...), chunk...)
}

func TestDecodeFormats(t *testing.T) {
	src := pattern(5, 3)
	opaque := image.NewRGBA(src.Rect) // BMP's encoder wants premultiplied input
	copy(opaque.Pix, src.Pix)
	pal := image.NewPaletted(src.Rect, nil)
	for i := 0; i < len(src.Pix); i += 4 {
		pal.Palette = append(pal.Palette, color.RGBA{src.Pix[i], src.Pix[i+1], src.Pix[i+2], 255})
	}
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i)
	}
	webpBits := []int{0, 1, 1, 0, 1, 0}
	var webpWant []uint8
	for _, bit := range webpBits {
		webpWant = append(webpWant, 9, []uint8{100, 200}[bit], 77)
	}

	for _, c := range []struct {
		name   string
		data   []byte
		format string
		want   []uint8 // nil: compare approximately with src (lossy)
	}{
		{"a.png", encode(t, func(b *bytes.Buffer) error { return png.Encode(b, src) }), "png", wantRGB(src)},
		{"a.bmp", encode(t, func(b *bytes.Buffer) error { return bmp.Encode(b, opaque) }), "bmp", wantRGB(src)},
		{"a.tiff", encode(t, func(b *bytes.Buffer) error { return tiff.Encode(b, src, nil) }), "tiff", wantRGB(src)},
		{"a.gif", encode(t, func(b *bytes.Buffer) error { return gif.Encode(b, pal, nil) }), "gif", wantRGB(src)},
		{"a.jpg", encode(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, src, &jpeg.Options{Quality: 100}) }), "jpeg", nil},
		{"a.webp", losslessWebP(3, 2, 9, 100, 200, 77, webpBits), "webp", webpWant},
	} {
		t.Run(c.format, func(t *testing.T) {
			if got := Sniff(c.data); got != c.format {
				t.Errorf("Sniff = %q", got)
			}
			m, info, err := Decode(c.name, c.data, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Format != c.format || info.Orientation != 1 {
				t.Errorf("info %+v", info)
			}
			want := c.want
			if want == nil {
				want = wantRGB(src)
			}
			if len(m.Pix) != len(want) {
				t.Fatalf("%d×%d image, %d values, want %d", m.Width, m.Height, len(m.Pix), len(want))
			}
			maxd := 0
			for i := range want {
				maxd = max(maxd, absDiff(m.Pix[i], want[i]))
			}
			// JPEG at quality 100 with 4:2:0 chroma still moves a per-pixel pattern a lot.
			if tol := map[bool]int{true: 0, false: 60}[c.want != nil]; maxd > tol {
				t.Errorf("max difference %d > %d (%s)", maxd, tol, info.PixelType)
			}
		})
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

// TestRGBConversion checks PIL's convert("RGB") rules on the decoder types.
func TestRGBConversion(t *testing.T) {
	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	nrgba.Pix = []uint8{200, 100, 50, 0, 10, 20, 30, 128} // alpha dropped, colour kept
	gray16 := image.NewGray16(image.Rect(0, 0, 3, 1))
	gray16.Pix = []uint8{0x00, 0x80, 0x12, 0x34, 0x01, 0x00} // I;16 → RGB clips
	nrgba64 := image.NewNRGBA64(image.Rect(0, 0, 1, 1))
	nrgba64.Pix = []uint8{0xAB, 0xFF, 0x12, 0x00, 0x00, 0x99, 0x00, 0x01} // high bytes
	palT := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{color.NRGBA{1, 2, 3, 255}, color.NRGBA{40, 50, 60, 0}})
	palT.Pix = []uint8{1, 0}
	gray := image.NewGray(image.Rect(0, 0, 1, 1))
	gray.Pix = []uint8{77}
	rgba := image.NewRGBA(image.Rect(0, 0, 1, 1))
	rgba.Pix = []uint8{50, 25, 0, 128} // premultiplied: straight ≈ (99.6, 49.8, 0)
	ycc := image.NewYCbCr(image.Rect(0, 0, 1, 1), image.YCbCrSubsampleRatio444)
	ycc.Y[0], ycc.Cb[0], ycc.Cr[0] = 76, 85, 255 // JFIF: R = 76 + 1.402·127 ≈ 254, G ≈ 0.1, B ≈ −0.2

	for _, c := range []struct {
		name string
		m    image.Image
		want []uint8
	}{
		{"NRGBA", nrgba, []uint8{200, 100, 50, 10, 20, 30}},
		{"Gray16", gray16, []uint8{128, 128, 128, 255, 255, 255, 255, 255, 255}},
		{"NRGBA64", nrgba64, []uint8{0xAB, 0x12, 0x00}},
		{"Paletted+tRNS", palT, []uint8{40, 50, 60, 1, 2, 3}},
		{"Gray", gray, []uint8{77, 77, 77}},
		{"RGBA", rgba, []uint8{99, 49, 0}}, // Go's un-premultiplication truncates
		{"YCbCr", ycc, []uint8{254, 0, 0}},
	} {
		if got := toRGB(c.m); !bytes.Equal(got.Pix, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got.Pix, c.want)
		}
	}
}

// TestPNGAlphaDropped: an RGBA PNG's colour survives under alpha 0, like
// PIL's convert("RGB") (no compositing onto black or white).
func TestPNGAlphaDropped(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 1, 2))
	m.Pix = []uint8{200, 100, 50, 0, 1, 2, 3, 64}
	rgb, _, err := Decode("alpha.png", encode(t, func(b *bytes.Buffer) error { return png.Encode(b, m) }), DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint8{200, 100, 50, 1, 2, 3}; !bytes.Equal(rgb.Pix, want) {
		t.Errorf("got %v, want %v", rgb.Pix, want)
	}
}

// TestGIF covers the first frame on the logical screen and the colour kept
// for the transparent index.
func TestGIF(t *testing.T) {
	palette := color.Palette{color.RGBA{9, 8, 7, 255}, color.RGBA{200, 0, 0, 255}, color.NRGBA{0, 0, 0, 0}}
	frame := image.NewPaletted(image.Rect(1, 1, 3, 2), palette)
	frame.Pix = []uint8{1, 2}
	second := image.NewPaletted(image.Rect(0, 0, 4, 3), palette) // never used
	data := encode(t, func(b *bytes.Buffer) error {
		return gif.EncodeAll(b, &gif.GIF{Image: []*image.Paletted{frame, second}, Delay: []int{0, 0},
			Config: image.Config{ColorModel: palette, Width: 4, Height: 3}})
	})
	// The encoder stores the transparent entry as black; give it a colour in
	// the global colour table (13 bytes in, 3 per entry) as other encoders do.
	if data[10]&0x80 == 0 {
		t.Fatal("no global colour table")
	}
	copy(data[13+3*2:], []byte{10, 20, 30})
	m, _, err := Decode("anim.gif", data, DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Width != 4 || m.Height != 3 {
		t.Fatalf("%d×%d, want the 4×3 screen", m.Width, m.Height)
	}
	fill := []uint8{10, 20, 30} // outside the frame: the transparent index's colour
	for y := 0; y < 3; y++ {
		for x := 0; x < 4; x++ {
			want := fill
			if y == 1 && x == 1 {
				want = []uint8{200, 0, 0}
			}
			if got := m.Pix[3*(y*4+x) : 3*(y*4+x)+3]; !bytes.Equal(got, want) {
				t.Errorf("(%d,%d) = %v, want %v", x, y, got, want)
			}
		}
	}
}

// pngWithSize returns a PNG signature and an IHDR chunk claiming w×h, with
// no image data: enough for DecodeConfig, corrupt for Decode.
func pngWithSize(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB
	chunk := append([]byte("IHDR"), ihdr...)
	out := append([]byte("\x89PNG\r\n\x1a\n"), binary.BigEndian.AppendUint32(nil, 13)...)
	out = append(out, chunk...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(chunk))
}

func TestDecodeErrors(t *testing.T) {
	good := encode(t, func(b *bytes.Buffer) error { return png.Encode(b, pattern(40, 30)) })
	jpg := encode(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, pattern(40, 30), nil) })
	zeroGIF := encode(t, func(b *bytes.Buffer) error {
		return gif.Encode(b, image.NewPaletted(image.Rect(0, 0, 1, 1), color.Palette{color.Black}), nil)
	})
	zeroGIF[6], zeroGIF[7], zeroGIF[8], zeroGIF[9] = 0, 0, 0, 0 // logical screen 0×0

	for _, c := range []struct {
		name     string
		data     []byte
		opt      DecodeOptions
		kind     error
		contains []string
	}{
		{"empty.png", nil, DecodeOptions{}, ErrEmpty, []string{"empty.png", "empty file"}},
		{"notes.txt", []byte("hello, world"), DecodeOptions{}, ErrUnknownFormat, []string{"notes.txt", "not a supported image"}},
		{"photo.heic", []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00"), DecodeOptions{}, ErrUnknownFormat, []string{"photo.heic"}},
		{"cut.png", good[:len(good)/2], DecodeOptions{}, ErrCorrupt, []string{"cut.png", "truncated png data"}},
		{"cut.jpg", jpg[:len(jpg)/2], DecodeOptions{}, ErrCorrupt, []string{"cut.jpg", "jpeg"}},
		{"garbage.png", append([]byte("\x89PNG\r\n\x1a\n"), "not chunks at all"...), DecodeOptions{}, ErrCorrupt, []string{"garbage.png"}},
		{"zero.gif", zeroGIF, DecodeOptions{}, ErrEmpty, []string{"zero.gif", "zero size (0×0)"}},
		{"huge.png", pngWithSize(10000, 8000), DecodeOptions{}, ErrTooLarge,
			[]string{"huge.png", "10000×8000", "80 megapixels", "40-megapixel limit"}},
		{"small-budget.png", good, DecodeOptions{MaxPixels: 1000}, ErrTooLarge, []string{"40×30", "0.001-megapixel"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Decode(c.name, c.data, c.opt)
			if !errors.Is(err, c.kind) {
				t.Fatalf("err %v, want kind %v", err, c.kind)
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Name != c.name {
				t.Errorf("not a *DecodeError naming the file: %#v", err)
			}
			for _, s := range c.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q lacks %q", err, s)
				}
			}
			if !strings.HasPrefix(err.Error(), "imageproc: ") {
				t.Errorf("%q lacks the package prefix", err)
			}
		})
	}
	if _, _, err := Decode("", nil, DecodeOptions{}); err == nil || !strings.Contains(err.Error(), "image") {
		t.Errorf("unnamed: %v", err)
	}
}

// TestBudgetBeforeDecode: a huge image is refused from its header, without
// allocating its pixels.
func TestBudgetBeforeDecode(t *testing.T) {
	big := encode(t, func(b *bytes.Buffer) error {
		return png.Encode(b, image.NewGray(image.Rect(0, 0, 4000, 3000))) // 12 MP of zeros: compresses to ~12 KB
	})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := Decode("big.png", big, DecodeOptions{MaxPixels: 1_000_000})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("refusing allocated %d bytes", alloc)
	}
}
