// Fuzz targets for the metadata parsers and the preprocessor config:
// orientation must always come out 1–8 whatever the bytes, and an accepted
// config must preprocess an image to the size it promises.
package imageproc

import (
	"bytes"
	"encoding/binary"
	"image/png"
	"testing"

	"harmony/engine/models/released"
)

func FuzzPNGOrientation(f *testing.F) {
	var b bytes.Buffer
	png.Encode(&b, letters())
	plain := b.Bytes()
	with := func(pre, post [][]byte) []byte {
		idat := bytes.Index(plain, []byte("IDAT")) - 4
		iend := len(plain) - 12
		out := append([]byte{}, plain[:idat]...)
		out = append(out, bytes.Join(pre, nil)...)
		out = append(out, plain[idat:iend]...)
		out = append(out, bytes.Join(post, nil)...)
		return append(out, plain[iend:]...)
	}
	le := binary.LittleEndian
	f.Add(with([][]byte{pngChunk("eXIf", tiffBlob(le, 3, 6))}, nil))
	f.Add(with(nil, [][]byte{pngChunk("eXIf", tiffBlob(binary.BigEndian, 4, 8))}))
	f.Add(with([][]byte{pngChunk("tEXt", append([]byte("Raw profile type exif\x00"), rawProfile(tiffBlob(le, 3, 3))...))}, nil))
	f.Add(with([][]byte{pngChunk("zTXt", append([]byte("Raw profile type exif\x00\x00"), zlibBytes(rawProfile(tiffBlob(le, 3, 5)))...))}, nil))
	f.Add(with([][]byte{itxt("XML:com.adobe.xmp", xmp(7), true)}, nil))
	f.Add(with([][]byte{pngChunk("acTL", []byte{0, 0, 0, 2, 0, 0, 0, 0})}, [][]byte{pngChunk("fcTL", make([]byte, 26)), pngChunk("eXIf", tiffBlob(le, 3, 2))}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if o := pngOrientation(data); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

func FuzzWebPOrientation(f *testing.F) {
	f.Add(lettersWebP(tiffBlob(binary.LittleEndian, 3, 6), true))
	f.Add(lettersWebP(append([]byte("Exif\x00\x00"), tiffBlob(binary.BigEndian, 3, 8)...), true))
	f.Fuzz(func(t *testing.T, data []byte) {
		if o := orientation("webp", data); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

// FuzzEXIF reads a bare EXIF blob (TIFF header and IFD0), as every format
// ends up doing; a TIFF file is read the same way.
func FuzzEXIF(f *testing.F) {
	f.Add(tiffBlob(binary.LittleEndian, 3, 6))
	f.Add(tiffBlob(binary.BigEndian, 9, 7))
	f.Add(rationalBlob(12, 2))
	f.Add(shortPairBlob(5, 1))
	f.Add(append([]byte("Exif\x00\x00"), tiffBlob(binary.BigEndian, 12, 0)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if o := exifOrientation(data); o < exifBroken || o > 8 {
			t.Fatalf("orientation %d", o)
		}
		if o := orientation("tiff", data); o < 1 || o > 8 {
			t.Fatalf("tiff orientation %d", o)
		}
	})
}

func FuzzPreprocessConfig(f *testing.F) {
	f.Add([]byte(released.ImageProcessor))
	f.Add([]byte(`{"do_resize":true,"size":{"height":7,"width":5},"resample":2,"crop_size":{"height":3,"width":9},"image_mean":0.5,"image_std":[1,2,3]}`))
	f.Add([]byte(`{"do_center_crop":false,"do_resize":false,"do_normalize":true,"image_std":0}`))
	m := NewRGB(5, 3)
	for i := range m.Pix {
		m.Pix[i] = uint8(i * 17)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		// Large targets are valid but slow to fill on every input.
		if c.DoResize && c.Width*c.Height > 1<<16 || c.DoCenterCrop && c.CropWidth*c.CropHeight > 1<<16 {
			return
		}
		r, err := Preprocess(m, c)
		if err != nil {
			return
		}
		if r.Width <= 0 || r.Height <= 0 || len(r.Pixels) != 3*r.Width*r.Height {
			t.Fatalf("%d×%d with %d values", r.Width, r.Height, len(r.Pixels))
		}
		if c.DoCenterCrop && (r.Width != c.CropWidth || r.Height != c.CropHeight) {
			t.Fatalf("%d×%d, crop_size says %d×%d", r.Width, r.Height, c.CropWidth, c.CropHeight)
		}
	})
}
