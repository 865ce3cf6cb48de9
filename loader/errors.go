// errors.go defines the typed errors of the loader. Every error names the
// file (path or URL) and, where one is at fault, the tensor, so that a user
// who points the engine at a broken download learns what to fetch again.
package loader

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"harmony/engine/tensor"
)

// FormatError is a malformed, truncated or unsupported file: bad JSON, a
// header that does not add up, a compressed or missing zip entry, a pickle
// the reader does not understand.
type FormatError struct {
	File   string // path or URL
	Tensor string // the tensor at fault, if any
	Msg    string
}

func (e *FormatError) Error() string {
	if e.Tensor != "" {
		return fmt.Sprintf("loader: %s: tensor %q: %s", e.File, e.Tensor, e.Msg)
	}
	return fmt.Sprintf("loader: %s: %s", e.File, e.Msg)
}

func formatErr(file, tensor, f string, a ...any) error {
	return &FormatError{File: file, Tensor: tensor, Msg: fmt.Sprintf(f, a...)}
}

// TensorErrorKind says what is wrong with a tensor.
type TensorErrorKind uint8

const (
	TensorMissing TensorErrorKind = iota + 1 // the configs imply it, the files lack it
	TensorShape                              // present with another shape
	TensorDType                              // present with a type the engine cannot use
)

// TensorError is a tensor that is missing or has the wrong shape or type
// for what the configs imply.
type TensorError struct {
	Kind      TensorErrorKind
	File      string // file holding the tensor (the component folder when missing)
	Component string // "unet", "vae", …
	Tensor    string // state-dict name within the component
	Stored    string // the name in the file when it differs (legacy names)
	Want      []int  // shape the config implies (TensorShape, TensorMissing)
	Have      []int  // shape on disk (TensorShape)
	DType     DType  // type on disk (TensorDType)
	// Others are the next few tensors of the component that are missing or
	// misshapen too, and More how many there are in all beyond this one
	// (printed with tensor.ShortList).
	Others []string
	More   int
}

func (e *TensorError) Error() string {
	s := e.message()
	if e.Stored != "" && e.Stored != e.Tensor {
		s += fmt.Sprintf(" (stored as %q)", e.Stored)
	}
	if e.More > 0 {
		s += fmt.Sprintf(" (%d more missing or misshapen: %s)", e.More, tensor.ShortList(e.Others, e.More))
	}
	return s
}

func (e *TensorError) message() string {
	switch e.Kind {
	case TensorMissing:
		return fmt.Sprintf("loader: %s: %s: missing tensor %q (the config implies %s)", e.File, e.Component, e.Tensor, ShapeString(e.Want))
	case TensorShape:
		return fmt.Sprintf("loader: %s: %s: tensor %q has shape %s, the config implies %s", e.File, e.Component, e.Tensor, ShapeString(e.Have), ShapeString(e.Want))
	default:
		return fmt.Sprintf("loader: %s: %s: tensor %q has type %s, which the engine cannot use", e.File, e.Component, e.Tensor, e.DType)
	}
}

// HashError is a file or cached piece whose SHA-256 differs from the one
// the manifest promises.
type HashError struct {
	File string // shard path or URL
	Want string // hex digest from the manifest, or from the Hub's tree listing
	Got  string // hex digest of the bytes read
}

func (e *HashError) Error() string {
	return fmt.Sprintf("loader: %s: sha256 %s, the manifest or the Hub's file list says %s (corrupt or changed file: load it again)", e.File, e.Got, e.Want)
}

// SourceError is a failure to open or read a file: a missing file, an
// HTTP status, a network or disk error. errors.Is(err, fs.ErrNotExist)
// holds for a missing file, whichever source it came from.
type SourceError struct {
	URL    string // file path or URL
	Op     string // "open", "read", "range"
	Status int    // HTTP status, 0 for none
	Err    error  // underlying error
}

func (e *SourceError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("loader: %s %s: HTTP status %d: %v", e.Op, e.URL, e.Status, e.Err)
	}
	return fmt.Sprintf("loader: %s %s: %v", e.Op, e.URL, e.Err)
}

func (e *SourceError) Unwrap() error { return e.Err }

// TimeoutError is a server that stopped answering: no connection, no
// response headers or no body bytes within the source's Timeouts. It comes
// wrapped in a SourceError naming the URL. Timeout reports true, as for
// net.Error.
type TimeoutError struct {
	Wait  string        // what did not come: "connection", "response" or "data"
	After time.Duration // the timeout that ran out
}

func (e *TimeoutError) Error() string {
	switch e.Wait {
	case "connection":
		return fmt.Sprintf("no connection within %v (is the host up and reachable?)", e.After)
	case "response":
		return fmt.Sprintf("no response within %v (the server took the request and did not answer: is it up, and the URL right?)", e.After)
	}
	return fmt.Sprintf("no %s within %v (the server stopped sending; a slow link may need a longer idle timeout)", e.Wait, e.After)
}

func (e *TimeoutError) Timeout() bool { return true }

// QuotaError is the browser (or disk) refusing to store a cache entry.
// The load stops: the message tells the user to free space or turn the
// cache off rather than silently downloading gigabytes on every visit.
type QuotaError struct {
	Key string // cache entry
	Err error  // the storage error (a QuotaExceededError DOMException in the browser)
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("loader: cache %s: storage quota exceeded (free browser storage or load without the cache): %v", e.Key, e.Err)
}

func (e *QuotaError) Unwrap() error { return e.Err }

// notFound reports whether err means a missing file.
func notFound(err error) bool { return errors.Is(err, fs.ErrNotExist) }
