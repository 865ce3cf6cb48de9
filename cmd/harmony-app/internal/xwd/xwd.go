// Package xwd decodes the X Window Dump files xwd writes, for the app's
// end-to-end test to read screenshots of the X server without an image
// tool: only the TrueColor layouts of 24- and 32-bit screens (ZPixmap, 32
// bits per pixel), which is what Xvfb gives at depth 24.
package xwd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"math/bits"
)

// Decode reads an xwd file.
func Decode(data []byte) (*image.NRGBA, error) {
	if len(data) < 100 {
		return nil, errors.New("xwd: file too short")
	}
	var h [25]uint32
	for i := range h {
		h[i] = binary.BigEndian.Uint32(data[4*i:])
	}
	headerSize, version, format := h[0], h[1], h[2]
	w, ht := int(h[4]), int(h[5])
	byteOrder, bpp, bpl := h[7], h[11], int(h[12])
	rmask, gmask, bmask := h[14], h[15], h[16]
	ncolors := int(h[19])
	if version != 7 || format != 2 || bpp != 32 {
		return nil, fmt.Errorf("xwd: unsupported dump (version %d, format %d, %d bits per pixel)", version, format, bpp)
	}
	off := int(headerSize) + 12*ncolors
	if off+bpl*ht > len(data) || bpl < 4*w {
		return nil, errors.New("xwd: truncated pixel data")
	}
	chan8 := func(v, mask uint32) uint8 {
		if mask == 0 {
			return 0
		}
		v = (v & mask) >> bits.TrailingZeros32(mask)
		n := bits.OnesCount32(mask)
		return uint8(v * 255 / (1<<n - 1))
	}
	m := image.NewNRGBA(image.Rect(0, 0, w, ht))
	for y := 0; y < ht; y++ {
		row := data[off+y*bpl:]
		for x := 0; x < w; x++ {
			var v uint32
			if byteOrder == 0 { // LSBFirst
				v = binary.LittleEndian.Uint32(row[4*x:])
			} else {
				v = binary.BigEndian.Uint32(row[4*x:])
			}
			i := m.PixOffset(x, y)
			m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = chan8(v, rmask), chan8(v, gmask), chan8(v, bmask), 255
		}
	}
	return m, nil
}
