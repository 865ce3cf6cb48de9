// swap.go implements the self-attention swap's schedule (harmony-method.md
// §3 "Swap"): the swap-start knob and which masks each UNet call uses.
package harmony

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// DefaultSwapStartFraction is the default swap-start: 10 % of the steps.
const DefaultSwapStartFraction = 0.1

// SwapStart is the swap-start knob: a fraction f of the number of inference
// steps N, or an explicit UNet call index.
type SwapStart struct {
	Fraction float64 // f, used when !IsCall
	Call     int     // call index, used when IsCall
	IsCall   bool    // true: Call is the first call that may swap
}

// DefaultSwapStart is f = 0.1 (call 5 for N = 50).
var DefaultSwapStart = SwapStart{Fraction: DefaultSwapStartFraction}

// ParseSwapStart reads the knob: a number with a decimal point or exponent
// ("0.1", "1.0", "1e-1") is a fraction of N; a plain integer ("5") is a call
// index.
func ParseSwapStart(s string) (SwapStart, error) {
	s = strings.TrimSpace(s)
	if i, err := strconv.Atoi(s); err == nil {
		if i < 0 {
			return SwapStart{}, fmt.Errorf("harmony: swap-start %q: negative call index", s)
		}
		return SwapStart{Call: i, IsCall: true}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0) || math.IsInf(f, 0) {
		return SwapStart{}, fmt.Errorf("harmony: swap-start %q: want a fraction of the steps (0.1) or a call index (5)", s)
	}
	return SwapStart{Fraction: f}, nil
}

// Index returns the first call index that may swap for N inference steps:
// ⌊f·N + 1e-9⌋ for a fraction (the 1e-9 keeps 0.1·50 at 5), or the call
// index itself. A value ≥ the number of calls means no swap.
func (s SwapStart) Index(numInferenceSteps int) int {
	if s.IsCall {
		return s.Call
	}
	x := math.Floor(float64(s.Fraction*float64(numInferenceSteps)) + 1e-9)
	if !(x < math.MaxInt32) {
		// A fraction so large that f·N overflows int (1e308) is past
		// every call too; converting it would wrap to a negative start.
		return math.MaxInt32
	}
	return int(x)
}

// SwapActive reports whether UNet call i (counting every call, PNDM's
// repeated timestep included) swaps: i ≥ start and i ≥ 1, because it uses
// the masks computed during call i − 1.
func SwapActive(call, start int) bool { return call >= start && call >= 1 }

// MaskSchedule hands each UNet call the masks it swaps with: the ones
// recorded at the previous call when the call swaps, none otherwise.
type MaskSchedule struct {
	Start int // first call index that may swap (SwapStart.Index)

	call          int  // the next call to Begin
	prevMain      Mask // masks recorded at call − 1
	prevVis       Mask
	havePrevMasks bool
}

// NewMaskSchedule starts a schedule for the given start index.
func NewMaskSchedule(start int) *MaskSchedule { return &MaskSchedule{Start: start} }

// Begin opens UNet call i (calls must come in order from 0). It returns
// whether the call swaps and, if so, the main and visual-only grid masks
// recorded during call i − 1.
func (s *MaskSchedule) Begin(call int) (active bool, main, vis Mask, err error) {
	if call != s.call {
		return false, Mask{}, Mask{}, fmt.Errorf("harmony: mask schedule at call %d, got call %d", s.call, call)
	}
	s.call++
	if !SwapActive(call, s.Start) {
		return false, Mask{}, Mask{}, nil
	}
	if !s.havePrevMasks {
		return false, Mask{}, Mask{}, fmt.Errorf("harmony: call %d swaps but call %d recorded no masks", call, call-1)
	}
	return true, s.prevMain, s.prevVis, nil
}

// Record stores the masks computed during the call just begun, for the next
// call.
func (s *MaskSchedule) Record(main, vis Mask) {
	s.prevMain, s.prevVis, s.havePrevMasks = main, vis, true
}
