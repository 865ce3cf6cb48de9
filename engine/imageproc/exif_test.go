// EXIF orientation tests: the eight transforms on a tiny image, the tag
// parser on hand-built segments, and whole JPEGs with an Exif APP1 inserted.
package imageproc

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

// exifSegment returns an APP1 Exif segment whose IFD0 holds one
// Orientation entry of the given type (3 SHORT, 4 LONG).
func exifSegment(bo binary.AppendByteOrder, typ uint16, v uint32) []byte {
	var tiff []byte
	if bo == binary.LittleEndian {
		tiff = []byte("II")
	} else {
		tiff = []byte("MM")
	}
	tiff = bo.AppendUint16(tiff, 42)
	tiff = bo.AppendUint32(tiff, 8) // IFD0 right after the header
	tiff = bo.AppendUint16(tiff, 2) // two entries: an unrelated one first
	tiff = bo.AppendUint16(tiff, 0x010F)
	tiff = bo.AppendUint16(tiff, 2)
	tiff = bo.AppendUint32(tiff, 4)
	tiff = append(tiff, "Go\x00\x00"...)
	tiff = bo.AppendUint16(tiff, 0x0112)
	tiff = bo.AppendUint16(tiff, typ)
	tiff = bo.AppendUint32(tiff, 1)
	if typ == 3 {
		tiff = bo.AppendUint16(tiff, uint16(v))
		tiff = append(tiff, 0, 0)
	} else {
		tiff = bo.AppendUint32(tiff, v)
	}
	tiff = bo.AppendUint32(tiff, 0) // no next IFD
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(2+len(payload)))
	return append(seg, payload...)
}

// withSegments inserts segments right after a JPEG's SOI marker.
func withSegments(jpg []byte, segs ...[]byte) []byte {
	out := append([]byte{}, jpg[:2]...)
	for _, s := range segs {
		out = append(out, s...)
	}
	return append(out, jpg[2:]...)
}

func TestOrient(t *testing.T) {
	// 3×2 image, pixel value = its index (a, b, c / d, e, f).
	m := NewRGB(3, 2)
	for i := range 6 {
		m.Pix[3*i] = uint8('a' + i)
	}
	for _, c := range []struct {
		o    int
		w, h int
		want string // rows top to bottom
	}{
		{1, 3, 2, "abcdef"},
		{2, 3, 2, "cbafed"}, // mirror left-right
		{3, 3, 2, "fedcba"}, // 180°
		{4, 3, 2, "defabc"}, // mirror top-bottom
		{5, 2, 3, "adbecf"}, // transpose
		{6, 2, 3, "daebfc"}, // 90° clockwise
		{7, 2, 3, "fcebda"}, // transverse
		{8, 2, 3, "cfbead"}, // 90° counter-clockwise
		{9, 3, 2, "abcdef"}, // invalid: untouched
	} {
		got := orient(m, c.o)
		s := ""
		for i := 0; i < len(got.Pix); i += 3 {
			s += string(rune(got.Pix[i]))
		}
		if got.Width != c.w || got.Height != c.h || s != c.want {
			t.Errorf("orientation %d: %d×%d %q, want %d×%d %q", c.o, got.Width, got.Height, s, c.w, c.h, c.want)
		}
	}
}

func TestJPEGOrientationParser(t *testing.T) {
	jpg := []byte{0xFF, 0xD8, 0xFF, 0xDA, 0, 2} // SOI, SOS
	other := []byte{0xFF, 0xE0, 0, 4, 'J', 'F'}
	for _, c := range []struct {
		name string
		data []byte
		want int
	}{
		{"none", jpg, 1},
		{"little-endian", withSegments(jpg, exifSegment(binary.LittleEndian, 3, 6)), 6},
		{"big-endian", withSegments(jpg, exifSegment(binary.BigEndian, 3, 8)), 8},
		{"after APP0", withSegments(jpg, other, exifSegment(binary.BigEndian, 3, 3)), 3},
		{"LONG", withSegments(jpg, exifSegment(binary.LittleEndian, 4, 5)), 5},
		{"out of range", withSegments(jpg, exifSegment(binary.LittleEndian, 3, 9)), 1},
		{"zero", withSegments(jpg, exifSegment(binary.LittleEndian, 3, 0)), 1},
		{"first Exif wins", withSegments(jpg, exifSegment(binary.LittleEndian, 3, 2), exifSegment(binary.LittleEndian, 3, 7)), 2},
		{"after SOS ignored", append(append([]byte{}, jpg...), exifSegment(binary.LittleEndian, 3, 6)...), 1},
		{"truncated segment", withSegments(jpg, exifSegment(binary.LittleEndian, 3, 6)[:20]), 1},
		{"not a JPEG", exifSegment(binary.LittleEndian, 3, 6), 1},
	} {
		if got := jpegOrientation(c.data); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	// Every truncation of a valid segment parses without panicking.
	full := withSegments(jpg, exifSegment(binary.BigEndian, 3, 6))
	for n := range full {
		jpegOrientation(full[:n])
	}
}

// TestJPEGOrientation decodes real JPEGs: a 3×2 grid of 16-pixel cells
// (one chroma block each, so colours survive compression) must come out
// turned by the Orientation tag.
func TestJPEGOrientation(t *testing.T) {
	colors := [6]color.NRGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255},
		{255, 255, 0, 255}, {0, 255, 255, 255}, {255, 255, 255, 255}}
	src := image.NewNRGBA(image.Rect(0, 0, 48, 32))
	for y := 0; y < 32; y++ {
		for x := 0; x < 48; x++ {
			src.SetNRGBA(x, y, colors[(y/16)*3+x/16])
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, src, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	// The same letter grid as TestOrient: cell index per output cell.
	for o, want := range map[int]string{1: "abcdef", 2: "cbafed", 3: "fedcba", 4: "defabc",
		5: "adbecf", 6: "daebfc", 7: "fcebda", 8: "cfbead"} {
		m, info, err := Decode("photo.jpg", withSegments(b.Bytes(), exifSegment(binary.LittleEndian, 3, uint32(o))), DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cw, ch := 3, 2
		if o >= 5 {
			cw, ch = 2, 3
		}
		if info.Orientation != o || m.Width != 16*cw || m.Height != 16*ch {
			t.Fatalf("orientation %d: info %+v, %d×%d", o, info, m.Width, m.Height)
		}
		for cell := range 6 {
			x, y := 16*(cell%cw)+8, 16*(cell/cw)+8
			px := m.Pix[3*(y*m.Width+x):]
			c := colors[want[cell]-'a']
			if absDiff(px[0], c.R) > 8 || absDiff(px[1], c.G) > 8 || absDiff(px[2], c.B) > 8 {
				t.Errorf("orientation %d cell %d: %v, want %v", o, cell, px[:3], c)
			}
		}
	}
	m, info, err := Decode("photo.jpg", withSegments(b.Bytes(), exifSegment(binary.LittleEndian, 3, 6)), DecodeOptions{IgnoreOrientation: true})
	if err != nil || info.Orientation != 1 || m.Width != 48 {
		t.Errorf("IgnoreOrientation: %v %+v %d", err, info, m.Width)
	}
}

func FuzzJPEGOrientation(f *testing.F) {
	f.Add(withSegments([]byte{0xFF, 0xD8, 0xFF, 0xDA, 0, 2}, exifSegment(binary.BigEndian, 3, 6)))
	f.Fuzz(func(t *testing.T, data []byte) {
		if o := jpegOrientation(data); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

func FuzzDecode(f *testing.F) {
	f.Add(pngWithSize(3, 2))
	f.Add(losslessWebP(3, 2, 1, 2, 3, 4, []int{0, 1, 0, 1, 0, 1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _, err := Decode("fuzz", data, DecodeOptions{MaxPixels: 1 << 16})
		if err == nil && len(m.Pix) != 3*m.Width*m.Height {
			t.Fatalf("%d×%d with %d bytes", m.Width, m.Height, len(m.Pix))
		}
	})
}
