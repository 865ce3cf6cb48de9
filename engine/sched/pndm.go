// pndm.go implements diffusers' PNDMScheduler (Liu et al.
// 2022, "Pseudo Numerical Methods for Diffusion Models on Manifolds"):
// pseudo linear multistep (PLMS) steps, preceded by pseudo Runge–Kutta (PRK)
// warm-up calls unless skip_prk_steps is set (BLIP-Diffusion sets it).
package sched

import (
	"fmt"
	"math"
)

// Python's 1/6, 1/3 and 1/24 are float64; torch casts them to float32 when
// they scale a float32 tensor. Go folds float32(1.0/6) exactly, which gives
// the same float32 (TestScalarConstants checks it).
const (
	oneSixth        = float32(1.0 / 6)
	oneThird        = float32(1.0 / 3)
	oneTwentyFourth = float32(1.0 / 24)
)

// PNDM is the PNDM/PLMS scheduler state of one denoising process.
type PNDM struct {
	schedule
	n         int   // number of inference steps N
	ratio     int   // T // N: distance between consecutive inference timesteps
	prk       []int // PRK warm-up timesteps (empty with skip_prk_steps)
	timesteps []int // every UNet call's timestep: prk ++ plms

	counter  int         // calls so far (diffusers' self.counter)
	ets      [][]float32 // e history: past noise estimates (newest last)
	curX     []float32   // x remembered across calls (PLMS k = 0 → 1; PRK sub-steps)
	curModel []float32   // PRK: running 1/6, 1/3, 1/3 sum of the RK4 stages; nil = 0
}

// NewPNDM builds a PNDM scheduler from a config (any class name: the fields
// are read as PNDMScheduler would).
func NewPNDM(cfg Config) (*PNDM, error) {
	cfg.ClassName = ClassPNDM
	s, err := newSchedule(cfg)
	if err != nil {
		return nil, err
	}
	return &PNDM{schedule: s}, nil
}

// SetTimesteps prepares n inference steps (diffusers set_timesteps) and
// resets the history. With skip_prk_steps the list is
// reverse(base[:−1] ++ base[−2] ++ base[−1]): n+1 calls, the second timestep
// repeated (N = 50, offset 0: 980, 960, 960, 940, …, 20, 0). Without it, 12
// PRK calls on the last four base timesteps and their half-steps come first,
// then the PLMS calls on base[:−3] reversed.
func (s *PNDM) SetTimesteps(n int) error {
	base, err := spacedTimesteps(s.cfg, n)
	if err != nil {
		return fmt.Errorf("sched: PNDM: %w", err)
	}
	s.n = n
	s.ratio = s.cfg.NumTrainTimesteps / n
	var plms []int
	if s.cfg.SkipPRKSteps {
		s.prk = nil
		plms = append(append(append([]int{}, pySlice(base, 0, -1)...), pySlice(base, -2, -1)...), pySlice(base, -1, len(base))...)
		reverse(plms)
	} else {
		// np.array(base[−4:]).repeat(2) + tile([0, T//N//2], 4), then
		// [:−1].repeat(2)[1:−1] reversed.
		last := pySlice(base, -4, len(base))
		half := s.ratio / 2
		var p []int
		for _, t := range last {
			p = append(p, t, t+half)
		}
		p = p[:len(p)-1]
		var rep []int
		for _, t := range p {
			rep = append(rep, t, t)
		}
		s.prk = append([]int{}, rep[1:len(rep)-1]...)
		reverse(s.prk)
		plms = append([]int{}, pySlice(base, 0, -3)...)
		reverse(plms)
	}
	s.timesteps = append(append([]int{}, s.prk...), plms...)
	if err := checkTimesteps(s.timesteps, s.cfg, n); err != nil {
		s.timesteps, s.prk = nil, nil
		return fmt.Errorf("sched: PNDM: %w", err)
	}
	s.counter = 0
	s.ets = nil
	s.curX = nil
	s.curModel = nil
	return nil
}

// Timesteps lists every UNet call's timestep.
func (s *PNDM) Timesteps() []float64 { return wholeTimesteps(s.timesteps) }

// Step advances one UNet call. t must be Timesteps()[k] for the k-th call.
//
// Notation (PNDM paper ↔ code): x_t = sample, ε_θ(x_t, t) = modelOutput,
// ᾱ_t = a, ᾱ_{t−δ} = a′ (the final ᾱ when t − δ < 0), e_t history = s.ets,
// δ = s.ratio. Sub-steps:
//  1. PRK warm-up (only without skip_prk_steps; calls 0..11): RK4 on the
//     transfer φ, stages weighted 1/6, 1/3, 1/3, 1/6, all taken from the x
//     at the start of the group of four (stepPRK).
//  2. PLMS combination of the e history into ê (Adams–Bashforth orders 1–4;
//     call 1 is the Heun-like correction of call 0: ê = (e₀ + e₁)/2 applied
//     to the x of call 0 from t + δ to t) (stepPLMS).
//  3. The transfer φ(x_t, ê, t → t − δ), PNDM eq. (9) (transfer).
func (s *PNDM) Step(modelOutput []float32, tf float64, sample []float32) ([]float32, error) {
	t, err := wholeTimestep("PNDM", tf)
	if err != nil {
		return nil, err
	}
	if err := s.checkStep("PNDM", s.n, modelOutput, sample, t); err != nil {
		return nil, err
	}
	if s.counter >= len(s.timesteps) {
		return nil, fmt.Errorf("sched: PNDM: call %d past the %d timesteps", s.counter, len(s.timesteps))
	}
	if want := s.timesteps[s.counter]; t != want {
		return nil, fmt.Errorf("sched: PNDM: call %d has timestep %d, want %d", s.counter, t, want)
	}
	if s.counter < len(s.prk) {
		return s.stepPRK(modelOutput, t, sample), nil
	}
	return s.stepPLMS(modelOutput, t, sample)
}

// stepPRK is diffusers' step_prk: call c of a group of four evaluates the
// RK4 stage at t, t − δ/2, t − δ/2, t − δ; the last call of the group
// transfers the group's x with the weighted stage sum.
func (s *PNDM) stepPRK(eps []float32, t int, x []float32) []float32 {
	diffToPrev := s.ratio / 2
	if s.counter%2 == 1 {
		diffToPrev = 0
	}
	prev := t - diffToPrev
	tGroup := s.prk[s.counter/4*4]
	switch s.counter % 4 {
	case 0:
		s.curModel = mulScalar(oneSixth, eps)
		s.ets = append(s.ets, clone(eps))
		s.curX = clone(x)
	case 1, 2:
		addInPlace(s.curModel, mulScalar(oneThird, eps))
	case 3:
		e := mulScalar(oneSixth, eps)
		for i := range e {
			e[i] = s.curModel[i] + e[i]
		}
		eps = e
		s.curModel = nil
	}
	cur := s.curX
	if cur == nil {
		cur = x
	}
	out := s.transfer(cur, tGroup, prev, eps)
	s.counter++
	return out
}

// stepPLMS is diffusers' step_plms.
func (s *PNDM) stepPLMS(eps []float32, t int, x []float32) ([]float32, error) {
	if !s.cfg.SkipPRKSteps && len(s.ets) < 3 {
		return nil, fmt.Errorf("sched: PNDM: PLMS step with %d history entries (PRK warm-up incomplete)", len(s.ets))
	}
	prev := t - s.ratio
	if s.counter != 1 {
		if len(s.ets) > 3 {
			s.ets = s.ets[len(s.ets)-3:]
		}
		s.ets = append(s.ets, clone(eps))
	} else {
		// Second call: same t as the first; redo the first transfer from
		// t + δ with the mean of both estimates.
		prev = t
		t += s.ratio
	}
	e := s.ets
	n := len(e)
	var ehat []float32
	switch {
	case n == 1 && s.counter == 0:
		ehat = eps
		s.curX = clone(x)
	case n == 1 && s.counter == 1:
		ehat = make([]float32, len(eps))
		for i := range ehat {
			ehat[i] = (eps[i] + e[0][i]) / 2
		}
		x = s.curX
		s.curX = nil
	case n == 2:
		// (3·e₋₁ − e₋₂) / 2
		ehat = make([]float32, len(eps))
		for i := range ehat {
			ehat[i] = float32(float32(3*e[1][i])-e[0][i]) / 2
		}
	case n == 3:
		// (23·e₋₁ − 16·e₋₂ + 5·e₋₃) / 12
		ehat = make([]float32, len(eps))
		for i := range ehat {
			v := float32(23*e[2][i]) - float32(16*e[1][i])
			v += float32(5 * e[0][i])
			ehat[i] = v / 12
		}
	default:
		// (1/24)·(55·e₋₁ − 59·e₋₂ + 37·e₋₃ − 9·e₋₄)
		ehat = make([]float32, len(eps))
		for i := range ehat {
			v := float32(55*e[3][i]) - float32(59*e[2][i])
			v += float32(37 * e[1][i])
			v -= float32(9 * e[0][i])
			ehat[i] = oneTwentyFourth * v
		}
	}
	out := s.transfer(x, t, prev, ehat)
	s.counter++
	return out, nil
}

// transfer is diffusers' _get_prev_sample, PNDM eq. (9):
//
//	x_{t−δ} = √(a′/a)·x_t − (a′ − a)·ε / (a·√(1 − a′) + √(a·(1 − a)·a′))
//
// with a = ᾱ_t and a′ = ᾱ_{prev} (the final ᾱ when prev < 0). Every scalar
// and elementwise operation is a float32 operation, as in torch.
func (s *PNDM) transfer(x []float32, t, prev int, eps []float32) []float32 {
	a := s.alphaAt(t)
	ap := s.alphaAt(prev)
	b := 1 - a   // β_t (1 − ᾱ_t)
	bp := 1 - ap // 1 − ᾱ_{t−δ}
	if s.cfg.PredictionType == "v_prediction" {
		// ε = √a·v + √(1 − a)·x
		sa, sb := sqrt32(a), sqrt32(b)
		v := make([]float32, len(eps))
		for i := range v {
			v[i] = float32(sa*eps[i]) + float32(sb*x[i])
		}
		eps = v
	}
	sampleCoeff := sqrt32(ap / a)
	denom := float32(a*sqrt32(bp)) + sqrt32(float32(float32(a*b)*ap))
	d := ap - a
	out := make([]float32, len(x))
	for i := range out {
		out[i] = float32(sampleCoeff*x[i]) - float32(d*eps[i])/denom
	}
	return out
}

// sqrt32 is a correctly rounded float32 square root (torch's x ** 0.5).
func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// mulScalar returns c·v in float32.
func mulScalar(c float32, v []float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(c * x) // rounded: callers add to it
	}
	return out
}

// addInPlace adds b to a in float32.
func addInPlace(a, b []float32) {
	for i := range a {
		a[i] += b[i]
	}
}

func clone(v []float32) []float32 { return append([]float32(nil), v...) }

func reverse(v []int) {
	for i, j := 0, len(v)-1; i < j; i, j = i+1, j-1 {
		v[i], v[j] = v[j], v[i]
	}
}

// pySlice is Python's v[lo:hi] with negative indices counted from the end
// and both bounds clamped.
func pySlice(v []int, lo, hi int) []int {
	n := len(v)
	fix := func(i int) int {
		if i < 0 {
			i += n
		}
		return max(0, min(i, n))
	}
	lo, hi = fix(lo), fix(hi)
	if lo >= hi {
		return nil
	}
	return v[lo:hi]
}
