// lms.go implements diffusers 0.11's LMSDiscreteScheduler (Karras et al.
// 2022's k-LMS): the probability-flow ODE in σ = √((1 − ᾱ)/ᾱ), integrated
// with a linear multistep method of order up to 4 whose weights are the
// integrals of the Lagrange basis polynomials through the last σ's.
//
// Timesteps are fractional: np.linspace(0, T−1, N) reversed, with σ
// interpolated linearly in t between the training σ's; the UNet sees them as
// float32 (the reference's get_timestep_embedding casts with .float()).
//
// The reference integrates each weight with scipy.integrate.quad on an
// integrand evaluated in float32 (relative error up to ~1e-7). Here the
// integrals are exact: the basis polynomial is expanded in float64 around
// the current σ and its antiderivative evaluated at the bounds. The weight
// is then rounded to float32 where the reference's `coeff * derivative`
// rounds it, so the two agree to the last bit except where the reference's
// quadrature error crosses a float32 rounding boundary.
package sched

import (
	"fmt"
	"math"
)

// LMSOrder is the multistep order the reference's step uses (its default 4).
const LMSOrder = 4

// LMS is the LMSDiscreteScheduler state of one denoising process.
type LMS struct {
	schedule
	trainSigmas []float32 // σ_t for t in [0, T), float32 as the reference computes them
	initSigma   float32   // max σ of the training schedule
	timesteps   []float64 // descending, fractional
	sigmas      []float32 // σ of every call, then 0: N+1 entries
	derivs      [][]float32
	// weights replaces Coefficients when set (tests: the reference's own
	// quadrature weights must give its steps bit for bit).
	weights func(step int) []float64
}

// NewLMS builds an LMS scheduler from a config (read as LMSDiscreteScheduler
// reads it: only the β schedule, T and the prediction type matter).
func NewLMS(cfg Config) (*LMS, error) {
	cfg.ClassName = ClassLMS
	s, err := newSchedule(cfg)
	if err != nil {
		return nil, err
	}
	l := &LMS{schedule: s, trainSigmas: make([]float32, len(s.alphasCum))}
	for i, a := range s.alphasCum {
		// ((1 − ᾱ)/ᾱ) ** 0.5 on a float32 tensor: torch's pow takes the
		// correctly rounded sqrt for the exponent 0.5.
		l.trainSigmas[i] = sqrt32((1 - a) / a)
		l.initSigma = max(l.initSigma, l.trainSigmas[i])
	}
	return l, nil
}

// InitNoiseSigma is the largest training σ (the reference's sigmas.max()).
func (s *LMS) InitNoiseSigma() float32 { return s.initSigma }

// SetTimesteps prepares n steps: t_i = linspace(0, T−1, n) reversed (float64)
// and σ_i = np.interp(t_i, arange(T), σ_train) rounded to float32, with a
// final σ = 0. It resets the derivative history.
func (s *LMS) SetTimesteps(n int) error {
	T := s.cfg.NumTrainTimesteps
	if n < 1 || n > T {
		return fmt.Errorf("sched: LMS: num_inference_steps %d outside [1, %d]", n, T)
	}
	ts := make([]float64, n)
	if n > 1 {
		// numpy linspace: i·step, the end point exactly T − 1.
		step := float64(T-1) / float64(n-1)
		for i := range n {
			ts[i] = float64(i) * step
		}
		ts[n-1] = float64(T - 1)
	}
	for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
		ts[i], ts[j] = ts[j], ts[i]
	}
	s.timesteps = ts
	s.sigmas = make([]float32, n+1)
	for i, t := range ts {
		s.sigmas[i] = float32(npInterp(t, s.trainSigmas))
	}
	s.derivs = nil
	return nil
}

// npInterp is np.interp(x, arange(len(fp)), fp) for 0 ≤ x ≤ len(fp) − 1:
// slope·(x − j) + fp[j] with j = ⌊x⌋, fp[j] itself at a knot and at the end.
func npInterp(x float64, fp []float32) float64 {
	n := len(fp)
	j := int(math.Floor(x))
	switch {
	case j >= n-1:
		return float64(fp[n-1])
	case j < 0:
		return float64(fp[0])
	case float64(j) == x:
		return float64(fp[j])
	}
	slope := (float64(fp[j+1]) - float64(fp[j])) / float64(1)
	return slope*(x-float64(j)) + float64(fp[j])
}

// Timesteps lists every UNet call's (fractional) timestep.
func (s *LMS) Timesteps() []float64 { return append([]float64(nil), s.timesteps...) }

// Sigmas lists σ of every call and the final 0 (N+1 values).
func (s *LMS) Sigmas() []float32 { return append([]float32(nil), s.sigmas...) }

// index finds t among the timesteps, as the reference's
// (timesteps == t).nonzero() does.
func (s *LMS) index(t float64) (int, error) {
	if s.timesteps == nil {
		return 0, fmt.Errorf("sched: LMS: called before SetTimesteps")
	}
	for i, v := range s.timesteps {
		if v == t {
			return i, nil
		}
	}
	return 0, fmt.Errorf("sched: LMS: timestep %v is not one of the %d inference timesteps", t, len(s.timesteps))
}

// ScaleModelInput divides the sample by √(σ² + 1), in float32 like the
// reference.
func (s *LMS) ScaleModelInput(sample []float32, t float64) ([]float32, error) {
	i, err := s.index(t)
	if err != nil {
		return nil, err
	}
	sg := s.sigmas[i]
	d := sqrt32(float32(sg*sg) + 1)
	out := make([]float32, len(sample))
	for k, x := range sample {
		out[k] = x / d
	}
	return out, nil
}

// Coefficients returns the multistep weights of step i: for j < order,
// ∫ from σ_i to σ_{i+1} of the Lagrange basis polynomial of node σ_{i−j}
// through σ_i, …, σ_{i−order+1}, exactly (float64), with order =
// min(i+1, LMSOrder) as the reference's step uses.
func (s *LMS) Coefficients(i int) ([]float64, error) {
	if i < 0 || i >= len(s.timesteps) {
		return nil, fmt.Errorf("sched: LMS: step %d outside [0, %d)", i, len(s.timesteps))
	}
	order := min(i+1, LMSOrder)
	nodes := make([]float64, order)
	for k := range nodes {
		nodes[k] = float64(s.sigmas[i-k])
	}
	out := make([]float64, order)
	for j := range out {
		out[j] = LagrangeIntegral(nodes, j, nodes[0], float64(s.sigmas[i+1]))
	}
	return out, nil
}

// LagrangeIntegral is ∫_a^b ∏_{k≠j} (τ − x_k)/(x_j − x_k) dτ, computed
// exactly in float64: the numerator polynomial is expanded in u = τ − a
// (the nodes shifted by a, so that the small step b − a is not lost against
// σ's size) and its antiderivative evaluated at u = b − a.
func LagrangeIntegral(x []float64, j int, a, b float64) float64 {
	// p(u) = Σ c[m]·u^m, built one factor (u − y_k) at a time.
	c := []float64{1}
	den := 1.0
	for k, xk := range x {
		if k == j {
			continue
		}
		y := xk - a
		next := make([]float64, len(c)+1)
		for m, cm := range c {
			next[m+1] += cm
			next[m] -= cm * y
		}
		c = next
		den *= x[j] - xk
	}
	h := b - a
	// Horner on Σ c[m]·h^(m+1)/(m+1).
	sum := 0.0
	for m := len(c) - 1; m >= 0; m-- {
		sum = sum*h + c[m]/float64(m+1)
	}
	return sum * h / den
}

// Step is the reference's step with order 4: x̂₀ from the model output, the
// derivative (x − x̂₀)/σ appended to the history (the last 4 kept), and
// x + Σ_j w_j·d_{−j} over the newest derivatives first, every product and
// sum rounded to float32 in the reference's order.
func (s *LMS) Step(modelOutput []float32, t float64, sample []float32) ([]float32, error) {
	i, err := s.index(t)
	if err != nil {
		return nil, err
	}
	if len(modelOutput) != len(sample) {
		return nil, fmt.Errorf("sched: LMS: model output has %d values, sample %d", len(modelOutput), len(sample))
	}
	if len(s.derivs) > 0 && len(s.derivs[0]) != len(sample) {
		return nil, fmt.Errorf("sched: LMS: sample has %d values, the history %d", len(sample), len(s.derivs[0]))
	}
	sg := s.sigmas[i]
	n := len(sample)
	d := make([]float32, n)
	switch s.cfg.PredictionType {
	case "epsilon":
		for k := range d {
			pred := sample[k] - float32(sg*modelOutput[k])
			d[k] = (sample[k] - pred) / sg
		}
	case "v_prediction":
		s2 := float32(sg*sg) + 1
		c1 := -sg / sqrt32(s2)
		for k := range d {
			pred := float32(modelOutput[k]*c1) + sample[k]/s2
			d[k] = (sample[k] - pred) / sg
		}
	default:
		return nil, fmt.Errorf("%w: LMS prediction_type %q", ErrUnsupported, s.cfg.PredictionType)
	}
	s.derivs = append(s.derivs, d)
	if len(s.derivs) > LMSOrder {
		s.derivs = s.derivs[1:]
	}
	var coeffs []float64
	if s.weights != nil {
		coeffs = s.weights(i)
	} else if coeffs, err = s.Coefficients(i); err != nil {
		return nil, err
	}
	// zip(coeffs, reversed(derivs)) stops at the shorter one.
	terms := min(len(coeffs), len(s.derivs))
	out := make([]float32, n)
	for k := range out {
		var acc float32
		for j := 0; j < terms; j++ {
			acc += float32(float32(coeffs[j]) * s.derivs[len(s.derivs)-1-j][k])
		}
		out[k] = sample[k] + acc
	}
	return out, nil
}
