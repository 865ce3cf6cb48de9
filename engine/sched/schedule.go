// schedule.go computes the noise schedule (β, ᾱ) and the inference timestep
// grids (timestep_spacing "leading"), reproducing the reference's float32
// values bit for bit.
//
// The reference builds β with torch.linspace in float32 and ᾱ with
// torch.cumprod. Matching its ᾱ exactly (golden sched.alphas_cumprod, all
// 1000 values) takes three details of torch 1.13's CPU kernels:
//   - linspace: step = (end − start)/(T − 1) in float32; entry i is
//     start + step·i for i < T/2 and end − step·(T−1−i) above, but the AVX2
//     kernel fills 8 lanes at a time as base + j·step from the base of the
//     vector (base computed from the vector's first index), and the compiler
//     contracts every a·b + c into a fused multiply-add. The last T mod 16
//     entries go through the scalar loop (also fused).
//   - β = x² and α = 1 − β in float32.
//   - cumprod accumulates in float64 (at::acc_type<float, CPU> is double)
//     and rounds each prefix product to float32.
//
// Every variant without the fused multiply-add or with a float32 cumprod is
// off by 1–17 ulp somewhere; see TestAlphasCumprodGolden.
package sched

import (
	"fmt"
	"math"
)

// torchVecWidth is the float32 lane count of torch's AVX2 Vectorized<float>
// (8). Its vectorized loop takes two vectors per iteration, so the scalar
// tail is T mod 16 entries; an AVX-512 build (16 lanes, tail T mod 32) gives
// the same values for T = 1000 (checked against the golden).
const torchVecWidth = 8

// fma32 returns a·b + c rounded once to float32, like C's fmaf. The product
// of two float32 is exact in float64; the sum is rounded to odd in float64
// (53 ≥ 24 + 2 bits), which makes the final rounding to float32 correct.
// Only exact IEEE operations are used, so every platform gives the same bits.
func fma32(a, b, c float32) float32 {
	p := float64(float64(a) * float64(b)) // exact: 24 + 24 bits
	s, e := twoSum(p, float64(c))
	if e != 0 && math.Float64bits(s)&1 == 0 {
		// Round to odd: move s one ulp towards the lost part.
		if (e > 0) == (s > 0) {
			s = math.Float64frombits(math.Float64bits(s) + 1)
		} else {
			s = math.Float64frombits(math.Float64bits(s) - 1)
		}
	}
	return float32(s)
}

// twoSum returns s = fl(a + b) and the exact rounding error e (a + b = s + e).
func twoSum(a, b float64) (s, e float64) {
	s = a + b
	bb := s - a
	e = (a - (s - bb)) + (b - bb)
	return s, e
}

// torchLinspace32 reproduces torch.linspace(start, end, n, dtype=float32) on
// a CPU with AVX2 (see the file comment).
func torchLinspace32(start64, end64 float64, n int) []float32 {
	out := make([]float32, n)
	if n == 1 {
		out[0] = float32(start64)
		return out
	}
	start, end := float32(start64), float32(end64)
	step := (end - start) / float32(n-1)
	half := n / 2
	base := func(idx int) float32 {
		if idx < half {
			return fma32(step, float32(idx), start)
		}
		return fma32(-step, float32(n-idx-1), end)
	}
	i := 0
	for ; i <= n-2*torchVecWidth; i += 2 * torchVecWidth { // two vectors per iteration
		for v := i; v < i+2*torchVecWidth; v += torchVecWidth {
			b := base(v)
			for j := range torchVecWidth {
				out[v+j] = fma32(float32(j), step, b)
			}
		}
	}
	for ; i < n; i++ {
		out[i] = base(i)
	}
	return out
}

// Betas returns β_0..β_{T−1} in float32 as the reference computes them.
func Betas(c Config) ([]float32, error) {
	T := c.NumTrainTimesteps
	if c.TrainedBetas != nil {
		if len(c.TrainedBetas) != T {
			return nil, fmt.Errorf("sched: trained_betas has %d values, want %d", len(c.TrainedBetas), T)
		}
		out := make([]float32, T)
		for i, b := range c.TrainedBetas {
			out[i] = float32(b)
		}
		return out, nil
	}
	switch c.BetaSchedule {
	case "linear":
		return torchLinspace32(c.BetaStart, c.BetaEnd, T), nil
	case "scaled_linear":
		// Python computes beta_start**0.5 in float64 (correctly rounded sqrt).
		b := torchLinspace32(math.Sqrt(c.BetaStart), math.Sqrt(c.BetaEnd), T)
		for i, x := range b {
			b[i] = float32(x * x)
		}
		return b, nil
	case "squaredcos_cap_v2":
		// betas_for_alpha_bar in float64 Python math, then cast to float32.
		// Go's math.Cos may differ from libm by an ulp of float64 here,
		// which survives the float32 cast only in rare ties.
		alphaBar := func(t float64) float64 {
			x := math.Cos((t + 0.008) / 1.008 * math.Pi / 2)
			return x * x
		}
		out := make([]float32, T)
		for i := range T {
			t1 := float64(i) / float64(T)
			t2 := float64(i+1) / float64(T)
			out[i] = float32(min(1-alphaBar(t2)/alphaBar(t1), 0.999))
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: beta_schedule %q", ErrUnsupported, c.BetaSchedule)
}

// AlphasCumprod returns ᾱ_t = ∏_{s≤t} (1 − β_s), accumulated in float64 and
// rounded to float32 per entry (torch's CPU cumprod).
func AlphasCumprod(c Config) ([]float32, error) {
	betas, err := Betas(c)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(betas))
	acc := 1.0
	for i, b := range betas {
		acc *= float64(1 - b)
		out[i] = float32(acc)
	}
	return out, nil
}

// spacedTimesteps returns the n training timesteps an inference schedule
// visits, in ascending order, for the config's timestep_spacing (diffusers
// set_timesteps; numpy float64 arithmetic and half-to-even rounding).
func spacedTimesteps(c Config, n int) ([]int, error) {
	T := c.NumTrainTimesteps
	if n < 1 || n > T {
		return nil, fmt.Errorf("sched: num_inference_steps %d outside [1, %d]", n, T)
	}
	out := make([]int, n)
	switch c.TimestepSpacing {
	case "linspace":
		// np.linspace(0, T−1, n).round(): y_i = i·step, the last one exactly T−1.
		if n == 1 {
			return out, nil
		}
		step := float64(T-1) / float64(n-1)
		for i := range n {
			out[i] = int(math.RoundToEven(float64(i) * step))
		}
		out[n-1] = T - 1
	case "leading":
		r := T / n
		for i := range n {
			out[i] = i*r + c.StepsOffset
		}
	case "trailing":
		// np.round(np.arange(T, 0, −T/n)) − 1, reversed to ascending.
		vals := numpyArange(float64(T), 0, -float64(T)/float64(n))
		if len(vals) != n {
			return nil, fmt.Errorf("sched: trailing spacing gives %d timesteps for %d steps", len(vals), n)
		}
		for i, v := range vals {
			out[n-1-i] = int(math.RoundToEven(v)) - 1
		}
	default:
		return nil, fmt.Errorf("%w: timestep_spacing %q", ErrUnsupported, c.TimestepSpacing)
	}
	return out, nil
}

// checkTimesteps refuses a schedule that would index ᾱ outside [0, T): a
// steps_offset near num_train_timesteps pushes the last leading timesteps
// (and PNDM's half-steps) past the end, where diffusers fails with an
// IndexError and Step would panic.
func checkTimesteps(ts []int, c Config, n int) error {
	for _, t := range ts {
		if t < 0 || t >= c.NumTrainTimesteps {
			return fmt.Errorf("sched: %d steps with steps_offset %d reach timestep %d, outside num_train_timesteps %d", n, c.StepsOffset, t, c.NumTrainTimesteps)
		}
	}
	return nil
}

// numpyArange reproduces np.arange(start, stop, delta) for float64: length
// ceil((stop − start)/delta); entry 1 is start + delta, and the rest are
// start + i·d with d = (start + delta) − start (numpy's DOUBLE_fill).
func numpyArange(start, stop, delta float64) []float64 {
	n := int(math.Ceil((stop - start) / delta))
	if n <= 0 {
		return nil
	}
	out := make([]float64, n)
	out[0] = start
	if n == 1 {
		return out
	}
	out[1] = start + delta
	d := out[1] - start
	for i := 2; i < n; i++ {
		out[i] = start + float64(float64(i)*d) // conversion: no fused multiply-add
	}
	return out
}
