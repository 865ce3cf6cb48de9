// errors.go holds the errors a caller may need to tell apart, and the
// wrapping that turns what the bindings report into them.
package gpu

import (
	"context"
	"errors"
	"fmt"
)

// Errors a caller may need to tell apart.
var (
	// ErrNoAdapter: no WebGPU adapter (no driver, no navigator.gpu).
	ErrNoAdapter = errors.New("gpu: no adapter")
	// ErrTimeout: a wait on the GPU outlived Options.Timeout.
	ErrTimeout = errors.New("gpu: timed out waiting for the GPU")
	// ErrClosed: the device was closed.
	ErrClosed = errors.New("gpu: device closed")
)

// DeviceLostError reports that the device is gone (driver reset, tab
// backgrounded, out of memory); every later call fails with it.
type DeviceLostError struct {
	Reason  string
	Message string
}

func (e *DeviceLostError) Error() string {
	return fmt.Sprintf("gpu: device lost (%s): %s", e.Reason, e.Message)
}

// ValidationError is a WebGPU validation or out-of-memory error, tied to the
// pipeline or operation that raised it.
type ValidationError struct {
	Op      string // what was being done: "pipeline matmul.wgsl:main[W=f16]", "dispatch …", "buffer …"
	Message string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("gpu: %s: %s", e.Op, e.Message)
}

// LimitError reports a request beyond what the device was granted.
type LimitError struct {
	What string // which limit, e.g. "buffer \"unet.conv_in.weight\" size"
	Need uint64
	Have uint64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("gpu: %s needs %d, the device allows %d", e.What, e.Need, e.Have)
}

// wrapErr turns an error from the bindings into the device-lost error when
// the device is gone (whatever failed, that is the cause), keeps the
// package's own errors, and otherwise ties it to op as a ValidationError.
func (d *Device) wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if l := d.Lost(); l != nil {
		return l
	}
	switch err.(type) {
	case *ValidationError, *DeviceLostError, *LimitError:
		return err
	}
	if err == ErrTimeout || err == context.Canceled || err == context.DeadlineExceeded {
		return fmt.Errorf("gpu: %s: %w", op, err)
	}
	return &ValidationError{Op: op, Message: err.Error()}
}
