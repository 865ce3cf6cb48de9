// Orientation outside JPEG, as PIL 9.4's exif_transpose finds it: PNGs
// with an eXIf chunk, a tEXt "exif", ImageMagick's raw profile (tEXt, zTXt,
// iTXt) or XMP, before or after the image data; WebP with an EXIF chunk;
// TIFF with its own Orientation tag. Each built by hand around a 3×2 image
// whose six pixels are told apart.
package imageproc

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"

	"golang.org/x/image/tiff"
)

// letters is the 3×2 test image: pixel i has red 40·i+10 ("a" to "f").
func letters() *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	for i := range 6 {
		m.SetNRGBA(i%3, i/3, color.NRGBA{uint8(40*i + 10), 0, 0, 255})
	}
	return m
}

// readLetters names the pixels of a decoded letters image, row by row.
func readLetters(m *RGB) string {
	s := ""
	for i := 0; i < len(m.Pix); i += 3 {
		s += string(rune('a' + (int(m.Pix[i])-10+20)/40))
	}
	return s
}

var orientedLetters = map[int]string{1: "abcdef", 2: "cbafed", 3: "fedcba", 4: "defabc",
	5: "adbecf", 6: "daebfc", 7: "fcebda", 8: "cfbead"}

// tiffBlob is a TIFF header and an IFD0 with one Orientation entry.
func tiffBlob(bo binary.AppendByteOrder, typ uint16, v uint32) []byte {
	seg := exifSegment(bo, typ, v)
	return seg[4+6:] // drop the APP1 marker, length and "Exif\0\0"
}

func pngChunk(typ string, body []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	c = append(c, typ...)
	c = append(c, body...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// lettersPNG encodes the letters image with chunks inserted before the
// first IDAT (pre) and before IEND (post).
func lettersPNG(t *testing.T, pre, post [][]byte) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, letters()); err != nil {
		t.Fatal(err)
	}
	data := b.Bytes()
	idat := bytes.Index(data, []byte("IDAT")) - 4
	iend := len(data) - 12
	out := append([]byte{}, data[:idat]...)
	out = append(out, bytes.Join(pre, nil)...)
	out = append(out, data[idat:iend]...)
	out = append(out, bytes.Join(post, nil)...)
	return append(out, data[iend:]...)
}

func zlibBytes(b []byte) []byte {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(b)
	w.Close()
	return z.Bytes()
}

// rawProfile is ImageMagick's hex text form of an EXIF blob.
func rawProfile(blob []byte) []byte {
	h := hex.EncodeToString(blob)
	var lines []string
	for len(h) > 72 {
		lines, h = append(lines, h[:72]), h[72:]
	}
	lines = append(lines, h)
	return []byte("\nexif\n" + strings.Repeat(" ", 6) + itoa(len(blob)) + "\n" + strings.Join(lines, "\n") + "\n")
}

func itoa(n int) string {
	s := ""
	for ; n > 0 || s == ""; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

func xmp(o int) []byte {
	return []byte(`<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description tiff:Orientation="` + itoa(o) + `"/></rdf:RDF></x:xmpmeta>`)
}

func itxt(key string, v []byte, compressed bool) []byte {
	b := append([]byte(key), 0, 0, 0)
	if compressed {
		b[len(key)+1] = 1
		v = zlibBytes(v)
	}
	b = append(b, 0, 0) // no language, no translated keyword
	return pngChunk("iTXt", append(b, v...))
}

func checkOriented(t *testing.T, name string, data []byte, want int) {
	t.Helper()
	m, info, err := Decode(name, data, DecodeOptions{})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if info.Orientation != want || readLetters(m) != orientedLetters[want] {
		t.Errorf("%s: orientation %d, pixels %q; want %d, %q", name, info.Orientation, readLetters(m), want, orientedLetters[want])
	}
}

// TestPNGOrientation: every orientation 1–8 through each place PIL reads
// it from, before and after the image data.
func TestPNGOrientation(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	for o := 1; o <= 8; o++ {
		blob := tiffBlob(le, 3, uint32(o))
		exifBlob := append([]byte("Exif\x00\x00"), tiffBlob(be, 3, uint32(o))...)
		for name, ch := range map[string][]byte{
			"eXIf":                pngChunk("eXIf", blob),
			"tEXt exif":           pngChunk("tEXt", append([]byte("exif\x00"), exifBlob...)),
			"tEXt raw profile":    pngChunk("tEXt", append([]byte("Raw profile type exif\x00"), rawProfile(exifBlob)...)),
			"zTXt raw profile":    pngChunk("zTXt", append([]byte("Raw profile type exif\x00\x00"), zlibBytes(rawProfile(blob))...)),
			"iTXt raw profile":    itxt("Raw profile type exif", rawProfile(exifBlob), false),
			"iTXt compressed XMP": itxt("XML:com.adobe.xmp", xmp(o), true),
			"tEXt XMP":            pngChunk("tEXt", append([]byte("XML:com.adobe.xmp\x00"), xmp(o)...)),
			"eXIf, LONG":          pngChunk("eXIf", tiffBlob(be, 4, uint32(o))),
			"eXIf, RATIONAL":      pngChunk("eXIf", rationalBlob(uint32(2*o), 2)),
		} {
			checkOriented(t, name+" before IDAT", lettersPNG(t, [][]byte{ch}, nil), o)
			checkOriented(t, name+" after IDAT", lettersPNG(t, nil, [][]byte{ch}), o)
		}
	}
	eXIf := func(o int) []byte { return pngChunk("eXIf", tiffBlob(le, 3, uint32(o))) }
	for _, c := range []struct {
		name      string
		pre, post [][]byte
		want      int
	}{
		{"none", nil, nil, 1},
		{"last eXIf wins", [][]byte{eXIf(3), eXIf(6)}, nil, 6},
		{"eXIf before the data hides one after", [][]byte{eXIf(3)}, [][]byte{eXIf(6)}, 3},
		{"raw profile before, eXIf after: PIL reads on", [][]byte{itxt("Raw profile type exif", rawProfile(tiffBlob(le, 3, 8)), false)}, [][]byte{eXIf(6)}, 6},
		{"eXIf beats a raw profile", [][]byte{eXIf(2), itxt("Raw profile type exif", rawProfile(tiffBlob(le, 3, 8)), false)}, nil, 2},
		{"XMP only without the tag", [][]byte{eXIf(1), itxt("XML:com.adobe.xmp", xmp(6), false)}, nil, 1},
		{"XMP when EXIF lacks the tag", [][]byte{pngChunk("eXIf", tiffBlob(le, 3, 6)[:8+2]), itxt("XML:com.adobe.xmp", xmp(5), false)}, nil, 5},
		{"out of range", [][]byte{eXIf(9)}, nil, 1},
		{"zTXt exif is text: PIL fails", [][]byte{pngChunk("zTXt", append([]byte("exif\x00\x00"), zlibBytes(append([]byte("Exif\x00\x00"), tiffBlob(le, 3, 6)...))...))}, nil, 1},
		{"bad hex", [][]byte{pngChunk("tEXt", []byte("Raw profile type exif\x00\nexif\n 10\nzz"))}, nil, 1},
		{"not TIFF", [][]byte{pngChunk("eXIf", []byte("JUNK0000"))}, nil, 1},
		{"SHORT pair: first counts", [][]byte{pngChunk("eXIf", shortPairBlob(6, 3))}, nil, 6},
	} {
		checkOriented(t, c.name, lettersPNG(t, c.pre, c.post), c.want)
	}
	_, info, _ := Decode("x.png", lettersPNG(t, [][]byte{eXIf(6)}, nil), DecodeOptions{IgnoreOrientation: true})
	if info.Orientation != 1 {
		t.Errorf("IgnoreOrientation: %d", info.Orientation)
	}
}

// rationalBlob has an Orientation of type RATIONAL num/den.
func rationalBlob(num, den uint32) []byte {
	bo := binary.LittleEndian
	b := []byte("II*\x00")
	b = bo.AppendUint32(b, 8)
	b = bo.AppendUint16(b, 1)
	b = bo.AppendUint16(b, 0x0112)
	b = bo.AppendUint16(b, 5)
	b = bo.AppendUint32(b, 1)
	b = bo.AppendUint32(b, 8+2+12+4) // value after the IFD
	b = bo.AppendUint32(b, 0)
	b = bo.AppendUint32(b, num)
	return bo.AppendUint32(b, den)
}

// shortPairBlob has an Orientation of two SHORTs, stored inline.
func shortPairBlob(a, b uint16) []byte {
	bo := binary.BigEndian
	t := []byte("MM\x00*")
	t = bo.AppendUint32(t, 8)
	t = bo.AppendUint16(t, 1)
	t = bo.AppendUint16(t, 0x0112)
	t = bo.AppendUint16(t, 3)
	t = bo.AppendUint32(t, 2)
	t = bo.AppendUint16(t, a)
	t = bo.AppendUint16(t, b)
	return bo.AppendUint32(t, 0)
}

// lettersWebP is an extended (VP8X) lossless WebP of a 3×2 image whose
// pixel "a" alone is bright, with an EXIF chunk after the image data.
func lettersWebP(exif []byte, flag bool) []byte {
	simple := losslessWebP(3, 2, 0, 0, 200, 0, []int{1, 0, 0, 0, 0, 0})
	vp8l := simple[12:]
	vp8x := []byte("VP8X")
	vp8x = binary.LittleEndian.AppendUint32(vp8x, 10)
	flags := byte(0)
	if flag {
		flags = 0x08
	}
	vp8x = append(vp8x, flags, 0, 0, 0, 2, 0, 0, 1, 0, 0) // canvas 3×2, stored minus one
	body := append(append([]byte("WEBP"), vp8x...), vp8l...)
	if exif != nil {
		body = append(body, "EXIF"...)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(exif)))
		body = append(body, exif...)
		if len(exif)%2 == 1 {
			body = append(body, 0)
		}
	}
	return append(binary.LittleEndian.AppendUint32([]byte("RIFF"), uint32(len(body))), body...)
}

// brightAt is where pixel "a" lands under each orientation (w, h, x, y).
var brightAt = map[int][4]int{1: {3, 2, 0, 0}, 2: {3, 2, 2, 0}, 3: {3, 2, 2, 1}, 4: {3, 2, 0, 1},
	5: {2, 3, 0, 0}, 6: {2, 3, 1, 0}, 7: {2, 3, 1, 2}, 8: {2, 3, 0, 2}}

func TestWebPOrientation(t *testing.T) {
	check := func(name string, data []byte, want int) {
		t.Helper()
		m, info, err := Decode(name, data, DecodeOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p := brightAt[want]
		if info.Orientation != want || m.Width != p[0] || m.Height != p[1] || m.Pix[3*(p[3]*m.Width+p[2])+1] != 200 {
			t.Errorf("%s: orientation %d, %d×%d, want %d", name, info.Orientation, m.Width, m.Height, want)
		}
	}
	for o := 1; o <= 8; o++ {
		check("webp", lettersWebP(tiffBlob(binary.LittleEndian, 3, uint32(o)), true), o)
		check("webp Exif prefix", lettersWebP(append([]byte("Exif\x00\x00"), tiffBlob(binary.BigEndian, 3, uint32(o))...), true), o)
	}
	check("flag off", lettersWebP(tiffBlob(binary.LittleEndian, 3, 6), false), 1)
	check("no chunk", lettersWebP(nil, true), 1)
}

// withTIFFOrientation rewrites an encoded TIFF's IFD0 at the end of the
// file with an Orientation entry added.
func withTIFFOrientation(t *testing.T, data []byte, o uint16) []byte {
	bo := binary.LittleEndian
	if string(data[:2]) != "II" {
		t.Fatal("want a little-endian TIFF")
	}
	ifd := bo.Uint32(data[4:])
	n := int(bo.Uint16(data[ifd:]))
	entries := data[ifd+2 : int(ifd)+2+12*n]
	var e []byte
	e = bo.AppendUint16(e, 0x0112)
	e = bo.AppendUint16(e, 3)
	e = bo.AppendUint32(e, 1)
	e = bo.AppendUint16(e, o)
	e = append(e, 0, 0)
	var all [][]byte
	inserted := false
	for i := 0; i < n; i++ {
		ent := entries[12*i : 12*i+12]
		if !inserted && bo.Uint16(ent) > 0x0112 {
			all, inserted = append(all, e), true
		}
		all = append(all, ent)
	}
	if !inserted {
		all = append(all, e)
	}
	out := append([]byte{}, data...)
	if len(out)%2 == 1 {
		out = append(out, 0)
	}
	bo.PutUint32(out[4:], uint32(len(out)))
	out = bo.AppendUint16(out, uint16(len(all)))
	out = append(out, bytes.Join(all, nil)...)
	return bo.AppendUint32(out, 0)
}

func TestTIFFOrientation(t *testing.T) {
	var b bytes.Buffer
	if err := tiff.Encode(&b, letters(), nil); err != nil {
		t.Fatal(err)
	}
	for o := 1; o <= 8; o++ {
		checkOriented(t, "tiff", withTIFFOrientation(t, b.Bytes(), uint16(o)), o)
	}
	checkOriented(t, "tiff without the tag", b.Bytes(), 1)
}

func TestIFD0Orientation(t *testing.T) {
	le := binary.LittleEndian
	for _, c := range []struct {
		name string
		b    []byte
		want int
	}{
		{"SHORT", tiffBlob(le, 3, 6), 6},
		{"SSHORT", tiffBlob(le, 8, 7), 7},
		{"SLONG", tiffBlob(le, 9, 5), 5},
		{"BYTE is bytes in PIL", tiffBlob(le, 1, 6), 1},
		{"UNDEFINED", tiffBlob(le, 7, 6), 1},
		{"unknown type skipped", tiffBlob(le, 99, 6), exifAbsent},
		{"RATIONAL 12/2", rationalBlob(12, 2), 6},
		{"RATIONAL 13/2", rationalBlob(13, 2), 1},
		{"RATIONAL x/0", rationalBlob(6, 0), 1},
		{"RATIONAL beyond the end", rationalBlob(12, 2)[:30], exifAbsent},
		{"short header", []byte("II*\x00"), exifBroken},
		{"not TIFF", []byte("XX*\x00\x08\x00\x00\x00"), exifBroken},
		{"IFD beyond the end", []byte("II*\x00\xff\x00\x00\x00"), exifAbsent},
		{"swapped magic", append([]byte("II\x00*"), tiffBlob(le, 3, 4)[4:]...), 4},
	} {
		if got := ifd0Orientation(c.b); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
