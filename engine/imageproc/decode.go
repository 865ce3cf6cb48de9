// Decoding the reference image from bytes (blipdiffusion.md §4 step 1): the
// format is sniffed from its signature, the header is read first so that an
// image over the pixel budget is refused before anything is allocated, then
// the image is decoded, its EXIF orientation applied where PIL's
// exif_transpose finds one (exif.go) and converted to RGB the way PIL's
// convert("RGB") does.
package imageproc

import (
	"bytes"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"
)

// DefaultMaxPixels is the default pixel budget: 40 megapixels, larger than
// any phone photo, small enough that decoding stays within a browser tab's
// memory (the decoded image and its RGB copy take ~7 bytes per pixel).
const DefaultMaxPixels = 40_000_000

// DecodeOptions tunes Decode.
type DecodeOptions struct {
	MaxPixels         int64 // refuse images with more pixels (0: DefaultMaxPixels)
	IgnoreOrientation bool  // keep the stored pixel order of images with an EXIF Orientation tag
}

// Info describes a decoded image.
type Info struct {
	Format      string // "png", "jpeg", "webp", "gif", "bmp" or "tiff"
	Width       int    // stored width, before the orientation is applied
	Height      int    // stored height, before the orientation is applied
	Orientation int    // EXIF orientation that was applied (1: none)
	PixelType   string // the decoder's image type, e.g. "*image.NRGBA"
}

// format is one supported container.
type format struct {
	name   string
	magic  func([]byte) bool
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

var formats = []format{
	{"png", prefix("\x89PNG\r\n\x1a\n"), png.DecodeConfig, png.Decode},
	{"jpeg", prefix("\xff\xd8\xff"), jpeg.DecodeConfig, jpeg.Decode},
	{"gif", func(b []byte) bool { return prefix("GIF87a")(b) || prefix("GIF89a")(b) }, gif.DecodeConfig, gif.Decode},
	{"webp", func(b []byte) bool { return len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP" },
		webp.DecodeConfig, webp.Decode},
	{"bmp", prefix("BM"), bmp.DecodeConfig, bmp.Decode},
	{"tiff", func(b []byte) bool { return prefix("II*\x00")(b) || prefix("MM\x00*")(b) }, tiff.DecodeConfig, tiff.Decode},
}

func prefix(p string) func([]byte) bool {
	return func(b []byte) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }
}

// Sniff returns the format name of data ("png", "jpeg", …), or "".
func Sniff(data []byte) string {
	for _, f := range formats {
		if f.magic(data) {
			return f.name
		}
	}
	return ""
}

// Decode reads a PNG, JPEG, WebP, GIF (first frame), BMP or TIFF image and
// returns it as 8-bit RGB (alpha dropped, not composited). name only labels
// errors. Errors are *DecodeError.
func Decode(name string, data []byte, opt DecodeOptions) (*RGB, Info, error) {
	limit := opt.MaxPixels
	if limit <= 0 {
		limit = DefaultMaxPixels
	}
	if len(data) == 0 {
		return nil, Info{}, &DecodeError{Name: name, Kind: ErrEmpty}
	}
	var f *format
	for i := range formats {
		if formats[i].magic(data) {
			f = &formats[i]
			break
		}
	}
	if f == nil {
		return nil, Info{}, &DecodeError{Name: name, Kind: ErrUnknownFormat}
	}
	info := Info{Format: f.name, Orientation: 1}

	cfg, err := f.config(bytes.NewReader(data))
	if err != nil {
		return nil, info, &DecodeError{Name: name, Format: f.name, Kind: ErrCorrupt, Err: err}
	}
	info.Width, info.Height = cfg.Width, cfg.Height
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, info, &DecodeError{Name: name, Format: f.name, Kind: ErrEmpty, Width: cfg.Width, Height: cfg.Height}
	}
	if int64(cfg.Width)*int64(cfg.Height) > limit {
		return nil, info, &DecodeError{Name: name, Format: f.name, Kind: ErrTooLarge, Width: cfg.Width, Height: cfg.Height, Limit: limit}
	}

	m, err := f.decode(bytes.NewReader(data))
	if err != nil {
		return nil, info, &DecodeError{Name: name, Format: f.name, Kind: ErrCorrupt, Width: cfg.Width, Height: cfg.Height, Err: err}
	}
	info.PixelType = fmt.Sprintf("%T", m)

	var rgb *RGB
	if f.name == "gif" {
		rgb = gifFirstFrame(m, cfg)
	} else {
		rgb = toRGB(m)
	}
	if !opt.IgnoreOrientation {
		info.Orientation = orientation(f.name, data)
		rgb = orient(rgb, info.Orientation)
	}
	return rgb, info, nil
}

// DecodeFile reads and decodes a file (native tools; the browser hands
// bytes to Decode). Errors name the file by its base name.
func DecodeFile(path string, opt DecodeOptions) (*RGB, Info, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Info{}, err
	}
	return Decode(filepath.Base(path), data, opt)
}
