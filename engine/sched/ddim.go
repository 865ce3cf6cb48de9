// ddim.go implements DDIMScheduler with eta = 0 (Song et al. 2021,
// "Denoising Diffusion Implicit Models", eq. 12 with σ_t = 0), on the same
// β/ᾱ schedule as PNDM.
package sched

import "fmt"

// DDIM is the deterministic DDIM scheduler state (eta = 0; no noise is ever
// drawn, so one instance can serve any number of calls in order).
type DDIM struct {
	schedule
	n         int   // number of inference steps N
	ratio     int   // T // N (diffusers uses it for every spacing)
	timesteps []int // descending
}

// NewDDIM builds a DDIM scheduler from a config read for DDIMScheduler
// (ParseConfigAs(data, ClassDDIM) gives diffusers' from_config defaults).
func NewDDIM(cfg Config) (*DDIM, error) {
	cfg.ClassName = ClassDDIM
	s, err := newSchedule(cfg)
	if err != nil {
		return nil, err
	}
	return &DDIM{schedule: s}, nil
}

// SetTimesteps prepares n steps: the spaced timesteps in descending order
// (leading, N = 50, offset 1: 981, 961, …, 1).
func (s *DDIM) SetTimesteps(n int) error {
	base, err := spacedTimesteps(s.cfg, n)
	if err == nil {
		err = checkTimesteps(base, s.cfg, n)
	}
	if err != nil {
		return fmt.Errorf("sched: DDIM: %w", err)
	}
	reverse(base)
	s.n, s.ratio, s.timesteps = n, s.cfg.NumTrainTimesteps/n, base
	return nil
}

// Timesteps lists every UNet call's timestep.
func (s *DDIM) Timesteps() []float64 { return wholeTimesteps(s.timesteps) }

// Step is diffusers' DDIMScheduler.step with eta = 0.
//
// Notation (DDIM paper eq. 12 ↔ code): x_t = sample, ε_θ = predEps,
// ᾱ_t = a, ᾱ_{t−1} = a′ (previous inference timestep t − T/N; the final ᾱ
// below 0), x̂₀ = x0, σ_t = 0. Sub-steps:
//  1. prev = t − T//N; a, a′.
//  2. x̂₀ and ε from the model output: epsilon: x̂₀ = (x − √(1−a)·ε)/√a;
//     v_prediction: x̂₀ = √a·x − √(1−a)·v, ε = √a·v + √(1−a)·x;
//     sample: x̂₀ = output, ε = (x − √a·x̂₀)/√(1−a).
//  3. clip x̂₀ to ±clip_sample_range when clip_sample.
//  4. x_{t−1} = √a′·x̂₀ + √(1 − a′ − σ²)·ε with σ = 0.
func (s *DDIM) Step(modelOutput []float32, tf float64, sample []float32) ([]float32, error) {
	t, err := wholeTimestep("DDIM", tf)
	if err != nil {
		return nil, err
	}
	if err := s.checkStep("DDIM", s.n, modelOutput, sample, t); err != nil {
		return nil, err
	}
	prev := t - s.ratio
	a := s.alphaAt(t)
	ap := s.alphaAt(prev)
	b := 1 - a
	sa, sb := sqrt32(a), sqrt32(b)
	n := len(sample)
	x0 := make([]float32, n)
	eps := modelOutput
	switch s.cfg.PredictionType {
	case "epsilon":
		for i := range x0 {
			x0[i] = (sample[i] - float32(sb*modelOutput[i])) / sa
		}
	case "sample":
		copy(x0, modelOutput)
		eps = make([]float32, n)
		for i := range eps {
			eps[i] = (sample[i] - float32(sa*x0[i])) / sb
		}
	case "v_prediction":
		eps = make([]float32, n)
		for i := range x0 {
			x0[i] = float32(sa*sample[i]) - float32(sb*modelOutput[i])
			eps[i] = float32(sa*modelOutput[i]) + float32(sb*sample[i])
		}
	default:
		return nil, fmt.Errorf("%w: DDIM prediction_type %q", ErrUnsupported, s.cfg.PredictionType)
	}
	if s.cfg.ClipSample {
		r := float32(s.cfg.ClipSampleRange)
		for i, v := range x0 {
			x0[i] = max(-r, min(r, v))
		}
	}
	// (1 − a′ − σ_t²)^½ with σ_t = eta·variance^½ = 0.
	dirCoeff := sqrt32(1 - ap - 0)
	sap := sqrt32(ap)
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(sap*x0[i]) + float32(dirCoeff*eps[i])
	}
	return out, nil
}
