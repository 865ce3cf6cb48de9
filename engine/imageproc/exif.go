// EXIF orientation of JPEG photos: the Orientation tag (0x0112) of IFD0 in
// the first APP1 "Exif" segment, applied like PIL's ImageOps.exif_transpose
// (which diffusers' load_image calls) so the subject stands the way the
// user's photo viewer shows it. The parser reads untrusted bytes: every
// length is checked, and anything malformed means "no orientation".
package imageproc

import "encoding/binary"

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
		if marker == 0xE1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			return tiffOrientation(seg[6:]) // PIL reads the first Exif segment only
		}
		i += 2 + n
	}
	return 1
}

// tiffOrientation reads the Orientation tag from a TIFF header + IFD0.
func tiffOrientation(b []byte) int {
	if len(b) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(b[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(b[2:]) != 42 {
		return 1
	}
	ifd := int64(bo.Uint32(b[4:]))
	if ifd < 8 || ifd+2 > int64(len(b)) {
		return 1
	}
	count := int(bo.Uint16(b[ifd:]))
	for k := 0; k < count; k++ {
		e := ifd + 2 + 12*int64(k)
		if e+12 > int64(len(b)) {
			return 1
		}
		if bo.Uint16(b[e:]) != 0x0112 {
			continue
		}
		var v int
		switch typ := bo.Uint16(b[e+2:]); typ {
		case 3: // SHORT, stored left-justified in the value field
			v = int(bo.Uint16(b[e+8:]))
		case 4: // LONG
			v = int(bo.Uint32(b[e+8:]))
		default:
			return 1
		}
		if v < 1 || v > 8 {
			return 1
		}
		return v
	}
	return 1
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
