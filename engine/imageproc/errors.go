// Typed decode errors: callers (CLI, web page) tell the user which file is
// wrong and why, and test the kind with errors.Is.
package imageproc

import (
	"errors"
	"fmt"
	"io"
)

// Error kinds, matched with errors.Is on a *DecodeError.
var (
	ErrUnknownFormat = errors.New("not a supported image (PNG, JPEG, WebP, GIF, BMP or TIFF)")
	ErrCorrupt       = errors.New("corrupt image data")
	ErrEmpty         = errors.New("empty image")
	ErrTooLarge      = errors.New("image too large")
)

// DecodeError reports why an image could not be read.
type DecodeError struct {
	Name   string // the file name the caller gave
	Format string // detected format ("png", "jpeg", …), "" when unknown
	Kind   error  // ErrUnknownFormat, ErrCorrupt, ErrEmpty or ErrTooLarge
	Width  int    // image width in pixels, when the header was readable
	Height int    // image height in pixels, when the header was readable
	Limit  int64  // the pixel budget (ErrTooLarge)
	Err    error  // the decoder's own error (ErrCorrupt)
}

func (e *DecodeError) Error() string {
	name := e.Name
	if name == "" {
		name = "image"
	}
	switch e.Kind {
	case ErrUnknownFormat:
		return fmt.Sprintf("imageproc: %s: %v", name, e.Kind)
	case ErrEmpty:
		if e.Format == "" {
			return fmt.Sprintf("imageproc: %s: empty file", name)
		}
		return fmt.Sprintf("imageproc: %s: %s image has zero size (%d×%d)", name, e.Format, e.Width, e.Height)
	case ErrTooLarge:
		return fmt.Sprintf("imageproc: %s: %s image is %d×%d (%.3g megapixels), over the %.3g-megapixel limit",
			name, e.Format, e.Width, e.Height, float64(e.Width)*float64(e.Height)/1e6, float64(e.Limit)/1e6)
	default:
		what := "corrupt or truncated"
		if errors.Is(e.Err, io.ErrUnexpectedEOF) || errors.Is(e.Err, io.EOF) {
			what = "truncated"
		}
		return fmt.Sprintf("imageproc: %s: %s %s data: %v", name, what, e.Format, e.Err)
	}
}

// Unwrap exposes the kind and the decoder's error to errors.Is / errors.As.
func (e *DecodeError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}
