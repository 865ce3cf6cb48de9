// EXIF orientation, read where PIL 9.4's ImageOps.exif_transpose (which
// diffusers' load_image calls) reads it, so that the subject stands the way
// the user's photo viewer shows it:
//
//   - JPEG: IFD0 of the first APP1 "Exif" segment.
//   - PNG: the "exif" entry of PIL's info dict: an eXIf chunk, or a tEXt
//     chunk keyed "exif"; failing that, ImageMagick's "Raw profile type
//     exif" text chunk (hex); failing an Orientation tag in those, a
//     tiff:Orientation in an XMP text chunk ("XML:com.adobe.xmp"). Text
//     after the image data counts only when no "exif" entry came before it
//     (PIL reads the rest of the file only then).
//   - WebP: the first EXIF chunk of an extended (VP8X) file whose header
//     flags EXIF, as libwebp's demuxer returns it.
//   - TIFF: the Orientation tag of the file's own first IFD.
//
// GIF and BMP carry none. The tag is read as PIL's TIFF directory reader
// reads it: the last Orientation entry of IFD0 wins, the first value of a
// numeric type counts (6.0 and 12/2 are 6), a truncated directory keeps
// the entries before the cut. The parser reads untrusted bytes: every
// length is checked, and what PIL would fail on (a malformed EXIF blob)
// means "no orientation".
package imageproc

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
	"math"
	"regexp"
	"strings"
	"unicode/utf8"
)

// orientation returns the EXIF orientation (1–8) of an image in the named
// format, 1 when absent or invalid.
func orientation(format string, data []byte) int {
	var o int
	switch format {
	case "jpeg":
		return jpegOrientation(data)
	case "png":
		return pngOrientation(data)
	case "webp":
		o = exifOrientation(webpExif(data))
	case "tiff":
		o = ifd0Orientation(data)
	}
	return max(o, 1)
}

// Results of reading the Orientation tag besides its value 1–8 (a tag
// whose value is no transform reads as 1).
const (
	exifBroken = -1 // PIL raises on this EXIF: no orientation
	exifAbsent = 0  // no Orientation tag
)

// jpegOrientation returns the EXIF orientation (1–8) of a JPEG, 1 when
// absent or invalid.
func jpegOrientation(data []byte) int {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return 1
	}
	for i := 2; i+4 <= len(data); {
		if data[i] != 0xFF {
			return 1
		}
		marker := data[i+1]
		switch {
		case marker == 0xFF: // fill byte
			i++
			continue
		case marker == 0x01 || marker >= 0xD0 && marker <= 0xD8: // no length field
			i += 2
			continue
		case marker == 0xDA || marker == 0xD9: // start of scan / end of image: no more metadata
			return 1
		}
		n := int(binary.BigEndian.Uint16(data[i+2:])) // includes the two length bytes
		if n < 2 || i+2+n > len(data) {
			return 1
		}
		seg := data[i+4 : i+2+n]
		if marker == 0xE1 && len(seg) >= 5 && string(seg[:5]) == "Exif\x00" {
			// PIL keeps the first segment that starts so, even one
			// without the second NUL (which it then fails to parse).
			return max(exifOrientation(seg), 1)
		}
		i += 2 + n
	}
	return 1
}

// exifOrientation reads an EXIF blob as PIL's Exif.load does: an optional
// "Exif\0\0" prefix, then a TIFF header and IFD0.
func exifOrientation(b []byte) int {
	if b == nil {
		return exifAbsent
	}
	b = bytes.TrimPrefix(b, []byte("Exif\x00\x00"))
	if len(b) == 0 {
		return exifAbsent
	}
	return ifd0Orientation(b)
}

// tiffOrientation returns the orientation (1–8) from a TIFF header and its
// IFD0, 1 when absent or invalid.
func tiffOrientation(b []byte) int { return max(ifd0Orientation(b), 1) }

// tiffTypeSize is the byte size of each TIFF field type PIL 9.4 reads;
// entries of other types are skipped.
var tiffTypeSize = [17]int64{1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8}

// ifd0Orientation reads the Orientation tag (0x0112) of a TIFF header's
// IFD0: 1–8, exifAbsent or exifBroken.
func ifd0Orientation(b []byte) int {
	if len(b) < 8 {
		return exifBroken
	}
	var bo binary.ByteOrder
	switch string(b[:4]) {
	case "II*\x00", "II\x00*": // PIL accepts either magic order
		bo = binary.LittleEndian
	case "MM\x00*", "MM*\x00":
		bo = binary.BigEndian
	default:
		return exifBroken // BigTIFF included: no decoder here reads it
	}
	ifd := int64(bo.Uint32(b[4:]))
	size := int64(len(b))
	if ifd+2 > size {
		return exifAbsent
	}
	o := exifAbsent
	count := int64(bo.Uint16(b[ifd:]))
	for k := int64(0); k < count; k++ {
		e := ifd + 2 + 12*k
		if e+12 > size {
			break
		}
		tag, typ, n := bo.Uint16(b[e:]), bo.Uint16(b[e+2:]), int64(bo.Uint32(b[e+4:]))
		if int(typ) >= len(tiffTypeSize) || tiffTypeSize[typ] == 0 {
			continue
		}
		unit := tiffTypeSize[typ]
		val := b[e+8 : e+12]
		if n*unit > 4 {
			off := int64(bo.Uint32(val))
			if off+n*unit > size {
				break // PIL stops at a value beyond the end
			}
			val = b[off : off+n*unit]
		}
		if n == 0 || tag != 0x0112 {
			continue
		}
		o = orientationValue(bo, typ, val)
	}
	return o
}

// orientationValue is the transform a stored Orientation value selects:
// PIL looks the tag's first value up in a dict keyed 2–8, so a value equal
// to one of those counts whatever its numeric type, and bytes or text
// never do.
func orientationValue(bo binary.ByteOrder, typ uint16, v []byte) int {
	var x float64
	switch typ {
	case 3:
		x = float64(bo.Uint16(v))
	case 4, 13:
		x = float64(bo.Uint32(v))
	case 6:
		x = float64(int8(v[0]))
	case 8:
		x = float64(int16(bo.Uint16(v)))
	case 9:
		x = float64(int32(bo.Uint32(v)))
	case 11:
		x = float64(math.Float32frombits(bo.Uint32(v)))
	case 12:
		x = math.Float64frombits(bo.Uint64(v))
	case 16:
		x = float64(bo.Uint64(v))
	case 5, 10:
		num, den := int64(bo.Uint32(v)), int64(bo.Uint32(v[4:]))
		if typ == 10 {
			num, den = int64(int32(num)), int64(int32(den))
		}
		if den == 0 || num%den != 0 {
			return 1
		}
		x = float64(num / den)
	default: // BYTE, ASCII, UNDEFINED: bytes or text in PIL
		return 1
	}
	if x >= 1 && x <= 8 && x == math.Trunc(x) {
		return int(x)
	}
	return 1
}

// maxTextChunk is PIL's limit on a decompressed PNG text chunk (its
// SAFEBLOCK); a larger one fails PIL's decoding, and is ignored here.
const maxTextChunk = 1 << 20

// pngMeta is what PIL's PNG reader puts in the image's info dict that
// getexif looks at.
type pngMeta struct {
	exif     []byte // nil: no "exif" entry
	exifText bool   // the "exif" entry is text (zTXt or iTXt): PIL fails on it
	raw      []byte // "Raw profile type exif", nil when absent
	xmp      []byte // "XML:com.adobe.xmp", nil when absent
}

func (m *pngMeta) set(key string, v []byte, text bool) {
	switch key {
	case "exif":
		m.exif, m.exifText = v, text
	case "Raw profile type exif":
		m.raw = v
	case "XML:com.adobe.xmp":
		m.xmp = v
	}
}

// pngOrientation returns the orientation PIL reads from a PNG's chunks.
func pngOrientation(data []byte) int {
	const sig = "\x89PNG\r\n\x1a\n"
	if !bytes.HasPrefix(data, []byte(sig)) {
		return 1
	}
	var m, before pngMeta
	seenIDAT, animated := false, false
	for i := int64(len(sig)); i+8 <= int64(len(data)); {
		n := int64(binary.BigEndian.Uint32(data[i:]))
		typ := string(data[i+4 : i+8])
		if i+12+n > int64(len(data)) {
			break
		}
		body := data[i+8 : i+8+n]
		i += 12 + n
		if typ == "IDAT" && !seenIDAT {
			seenIDAT, before = true, m
		}
		if seenIDAT && (typ == "IEND" || typ == "fcTL" && animated) {
			break
		}
		switch typ {
		case "acTL":
			animated = len(body) >= 4 && binary.BigEndian.Uint32(body) > 1
		case "eXIf":
			m.exif, m.exifText = append([]byte("Exif\x00\x00"), body...), false
		case "tEXt":
			k, v, _ := bytes.Cut(body, []byte{0})
			if len(k) > 0 {
				m.set(string(k), v, string(k) != "exif")
			}
		case "zTXt":
			k, v, _ := bytes.Cut(body, []byte{0})
			if len(v) > 0 && v[0] != 0 {
				continue // an unknown method: PIL fails on the file
			}
			if len(v) > 0 {
				v = v[1:]
			}
			t, _ := inflate(v) // PIL takes a corrupt stream as empty text
			if len(k) > 0 {
				m.set(string(k), t, true)
			}
		case "iTXt":
			k, r, ok := bytes.Cut(body, []byte{0})
			if !ok || len(r) < 2 {
				continue
			}
			compressed, method := r[0], r[1]
			parts := bytes.SplitN(r[2:], []byte{0}, 3)
			if len(parts) < 3 {
				continue
			}
			v := parts[2]
			if !utf8.Valid(parts[0]) || !utf8.Valid(parts[1]) {
				continue
			}
			if compressed != 0 {
				if method != 0 {
					continue
				}
				if v, ok = inflate(v); !ok {
					continue
				}
			}
			if !utf8.Valid(v) {
				continue
			}
			m.set(string(k), v, true)
		}
	}
	if before.exif != nil {
		m = before // PIL read no further than the image data
	}
	o := exifAbsent
	switch {
	case m.exif != nil && m.exifText:
		return 1
	case m.exif != nil:
		o = exifOrientation(m.exif)
	case m.raw != nil:
		b, ok := rawProfileHex(m.raw)
		if !ok {
			return 1
		}
		o = exifOrientation(b)
	}
	if o == exifAbsent && len(m.xmp) > 0 {
		if s := xmpOrientation.FindSubmatch(m.xmp); s != nil {
			o = int(s[2][0] - '0')
		}
	}
	if o < 2 || o > 8 {
		return 1
	}
	return o
}

// xmpOrientation is PIL's pattern for the orientation in XMP.
var xmpOrientation = regexp.MustCompile(`tiff:Orientation(="|>)([0-9])`)

// inflate decompresses a zlib stream as PIL does for text chunks: nothing
// gives nothing, a truncated stream what came, a corrupt or oversized one
// false.
func inflate(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return []byte{}, true
	}
	r, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, false
	}
	out, err := io.ReadAll(io.LimitReader(r, maxTextChunk+1))
	if len(out) > maxTextChunk || err != nil && err != io.ErrUnexpectedEOF {
		return nil, false
	}
	return out, true
}

// rawProfileHex decodes ImageMagick's "Raw profile type exif" text
// ("\nexif\n    <length>\n<hex lines>") as PIL does: the lines from the
// fourth on, joined, read by bytes.fromhex (whitespace between bytes
// allowed, anything else fails).
func rawProfileHex(v []byte) ([]byte, bool) {
	lines := strings.Split(string(v), "\n")
	if len(lines) <= 3 {
		return []byte{}, true
	}
	s := strings.Join(lines[3:], "")
	out := make([]byte, 0, len(s)/2)
	for i := 0; i < len(s); {
		if strings.IndexByte(" \t\r\v\f", s[i]) >= 0 {
			i++
			continue
		}
		if i+1 >= len(s) {
			return nil, false
		}
		hi, lo := unhex(s[i]), unhex(s[i+1])
		if hi < 0 || lo < 0 {
			return nil, false
		}
		out = append(out, byte(hi<<4|lo))
		i += 2
	}
	return out, true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// webpExif returns the payload of the EXIF chunk libwebp's demuxer gives
// PIL: the first one in an extended file whose VP8X flags announce it; nil
// when there is none.
func webpExif(data []byte) []byte {
	if len(data) < 12+8+1 || string(data[:4]) != "RIFF" || string(data[8:12]) != "WEBP" || string(data[12:16]) != "VP8X" {
		return nil
	}
	if data[20]&0x08 == 0 { // the EXIF flag
		return nil
	}
	end := min(int64(len(data)), 8+int64(binary.LittleEndian.Uint32(data[4:])))
	for i := int64(12); i+8 <= end; {
		n := int64(binary.LittleEndian.Uint32(data[i+4:]))
		if i+8+n > end {
			return nil
		}
		if string(data[i:i+4]) == "EXIF" {
			return data[i+8 : i+8+n]
		}
		i += 8 + n + n&1
	}
	return nil
}

// orient returns m turned so that EXIF orientation o becomes 1:
//
//	2 mirror left-right   3 rotate 180°        4 mirror top-bottom
//	5 transpose           6 rotate 90° cw      7 transverse          8 rotate 90° ccw
func orient(m *RGB, o int) *RGB {
	if o < 2 || o > 8 {
		return m
	}
	w, h := m.Width, m.Height
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := NewRGB(ow, oh)
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			var sx, sy int // source pixel of output (x, y)
			switch o {
			case 2:
				sx, sy = w-1-x, y
			case 3:
				sx, sy = w-1-x, h-1-y
			case 4:
				sx, sy = x, h-1-y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, h-1-x
			case 7:
				sx, sy = w-1-y, h-1-x
			case 8:
				sx, sy = w-1-y, x
			}
			copy(out.Pix[3*(y*ow+x):3*(y*ow+x)+3], m.Pix[3*(sy*w+sx):3*(sy*w+sx)+3])
		}
	}
	return out
}
