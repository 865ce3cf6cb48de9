// nonfinite.go: the error for a NaN or ±Inf that turns up during a
// generation, and the scan for one in values already read back from the
// GPU (no extra read-back or pass on the device is made for it).
package pipeline

import (
	"fmt"
	"math"
)

// NonFiniteError is a NaN or ±Inf in a generation's input or intermediate
// values: the run stops instead of writing a picture of garbage.
type NonFiniteError struct {
	Stage  string // "latents" (the given initial noise), "denoise", "decode"
	Step   int    // the UNet call (1-based) for "denoise", else 0
	Tensor string // what held it: "latents", "noise prediction", "image"
	Index  int    // its first non-finite element
	Value  float32
}

func (e *NonFiniteError) Error() string {
	at := e.Stage
	if e.Step > 0 {
		at = fmt.Sprintf("%s step %d", e.Stage, e.Step)
	}
	return fmt.Sprintf("pipeline: %s: %s holds %v at element %d; the run is stopped (damaged weights or inputs, or a guidance too large for float32)", at, e.Tensor, e.Value, e.Index)
}

// firstNonFinite returns the index of the first NaN or ±Inf in v, or -1.
func firstNonFinite(v []float32) int {
	for i, x := range v {
		if math.Float32bits(x)&0x7f800000 == 0x7f800000 {
			return i
		}
	}
	return -1
}

// checkFinite returns a NonFiniteError for the first NaN or ±Inf in v.
func checkFinite(v []float32, stage string, step int, tensor string) error {
	if i := firstNonFinite(v); i >= 0 {
		return &NonFiniteError{Stage: stage, Step: step, Tensor: tensor, Index: i, Value: v[i]}
	}
	return nil
}
