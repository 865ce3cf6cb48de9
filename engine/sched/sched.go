// Package sched implements the diffusion schedulers on the CPU, in the
// spirit of diffusers: a scheduler has SetTimesteps and Step and nothing
// else; classifier-free guidance and the UNet live in the pipeline.
//
// PNDM (PLMS with or without the Runge–Kutta warm-up) follows
// diffusers' PNDMScheduler; DDIM (eta = 0) follows
// DDIMScheduler; LMS follows diffusers 0.11's LMSDiscreteScheduler (ELITE's
// sampler; fractional timesteps, scaled model input). All arithmetic mirrors the reference's torch float32
// operations one by one (each product, sum and quotient rounded to float32,
// sqrt correctly rounded, no fused multiply-adds), so a step fed the
// reference's inputs gives the reference's output to the last bit or so.
//
// Typical use (one scheduler per denoising process; PNDM keeps a history):
//
//	cfg, _ := sched.ParseConfig(schedulerConfigJSON)
//	s, _ := sched.New(cfg)
//	_ = s.SetTimesteps(50)
//	latents = scale(latents, s.InitNoiseSigma())
//	for _, t := range s.Timesteps() {
//		in, _ := s.ScaleModelInput(latents, t)
//		eps := unet(in, float32(t)) // guided noise prediction
//		latents, _ = s.Step(eps, t, latents)
//	}
package sched

import (
	"fmt"
	"math"
)

// Scheduler is one denoising process's scheduler state.
type Scheduler interface {
	// SetTimesteps prepares n inference steps and resets the history.
	SetTimesteps(n int) error
	// Timesteps lists the timestep of every UNet call, in call order
	// (PLMS: n+1 entries, the second one repeated). PNDM's and DDIM's are
	// whole numbers; LMS's are fractional. The UNet takes them as float32.
	Timesteps() []float64
	// ScaleModelInput is the UNet's input at timestep t for the sample
	// (LMS divides by √(σ² + 1); PNDM and DDIM return the sample itself).
	ScaleModelInput(sample []float32, t float64) ([]float32, error)
	// Step maps the model output at timestep t and the current sample to
	// the previous (less noisy) sample. Calls must follow Timesteps().
	// The inputs are not modified or retained.
	Step(modelOutput []float32, t float64, sample []float32) ([]float32, error)
	// InitNoiseSigma scales the initial Gaussian latents (1 for PNDM and
	// DDIM, the largest σ for LMS).
	InitNoiseSigma() float32
}

// New builds the scheduler named by cfg.ClassName.
func New(cfg Config) (Scheduler, error) {
	switch cfg.ClassName {
	case ClassPNDM:
		return NewPNDM(cfg)
	case ClassDDIM:
		return NewDDIM(cfg)
	case ClassLMS:
		return NewLMS(cfg)
	}
	return nil, fmt.Errorf("%w: scheduler class %q", ErrUnsupported, cfg.ClassName)
}

// schedule is what both schedulers share: ᾱ and the final ᾱ.
type schedule struct {
	cfg        Config
	alphasCum  []float32 // ᾱ_t for t in [0, T)
	finalAlpha float32   // ᾱ used when the previous timestep is < 0
}

func newSchedule(cfg Config) (schedule, error) {
	if err := cfg.Validate(); err != nil {
		return schedule{}, err
	}
	ac, err := AlphasCumprod(cfg)
	if err != nil {
		return schedule{}, err
	}
	s := schedule{cfg: cfg, alphasCum: ac, finalAlpha: ac[0]}
	if cfg.SetAlphaToOne {
		s.finalAlpha = 1
	}
	return s, nil
}

// alphaAt returns ᾱ_t, or the final ᾱ for t < 0.
func (s *schedule) alphaAt(t int) float32 {
	if t < 0 {
		return s.finalAlpha
	}
	return s.alphasCum[t]
}

// AlphasCumprod returns ᾱ (shared; do not modify).
func (s *schedule) AlphasCumprod() []float32 { return s.alphasCum }

// InitNoiseSigma is 1 for PNDM and DDIM (LMS has its own).
func (s *schedule) InitNoiseSigma() float32 { return 1 }

// wholeTimesteps converts PNDM's and DDIM's timesteps for the interface.
func wholeTimesteps(ts []int) []float64 {
	out := make([]float64, len(ts))
	for i, t := range ts {
		out[i] = float64(t)
	}
	return out
}

// wholeTimestep reads a PNDM or DDIM timestep, which must be a whole number.
func wholeTimestep(name string, t float64) (int, error) {
	if t != math.Trunc(t) || math.Abs(t) > 1<<30 {
		return 0, fmt.Errorf("sched: %s: timestep %v is not a whole number", name, t)
	}
	return int(t), nil
}

// ScaleModelInput is the identity for PNDM and DDIM (a copy).
func (s *schedule) ScaleModelInput(sample []float32, _ float64) ([]float32, error) {
	return clone(sample), nil
}

// checkStep validates the arguments every Step shares.
func (s *schedule) checkStep(name string, n int, modelOutput, sample []float32, t int) error {
	if n == 0 {
		return fmt.Errorf("sched: %s: Step before SetTimesteps", name)
	}
	if len(modelOutput) != len(sample) {
		return fmt.Errorf("sched: %s: model output has %d values, sample %d", name, len(modelOutput), len(sample))
	}
	if t < 0 || t >= s.cfg.NumTrainTimesteps {
		return fmt.Errorf("sched: %s: timestep %d outside [0, %d)", name, t, s.cfg.NumTrainTimesteps)
	}
	return nil
}
