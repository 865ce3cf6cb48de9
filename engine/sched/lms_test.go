package sched

import (
	"fmt"
	"math"
	"testing"

	"harmony/loader/golden"
)

// eliteLMS is ELITE's LMSDiscreteScheduler arguments.
func eliteLMS(t *testing.T, pred string) *LMS {
	t.Helper()
	c, err := DefaultConfig(ClassLMS)
	if err != nil {
		t.Fatal(err)
	}
	c.BetaStart, c.BetaEnd, c.BetaSchedule, c.PredictionType = 0.00085, 0.012, "scaled_linear", pred
	s, err := NewLMS(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLMSScheduleGolden compares timesteps, σ, the initial σ and the
// multistep weights with diffusers 0.11.1's. Timesteps and σ must be
// bit-identical; the exact weights must match the reference's quadrature on
// a float64 integrand to 1e-12 (relative to the largest weight of the step)
// and its own float32-integrand quadrature to 1e-6.
func TestLMSScheduleGolden(t *testing.T) {
	f := golden.Open(t, "lms", "lms.safetensors")
	s := eliteLMS(t, "epsilon")
	init, _ := f.MustF32(t, "init_noise_sigma")
	if s.InitNoiseSigma() != init[0] {
		t.Errorf("init_noise_sigma %v, want %v", s.InitNoiseSigma(), init[0])
	}
	ac, _ := f.MustF32(t, "alphas_cumprod")
	for i, a := range s.AlphasCumprod() {
		if d := ulpDiff(a, ac[i]); d > 1 {
			t.Fatalf("alphas_cumprod[%d] off by %d ulp", i, d)
		}
	}
	for _, n := range []int{100, 7, 1} {
		if err := s.SetTimesteps(n); err != nil {
			t.Fatal(err)
		}
		wantT, _, err := f.F64(fmt.Sprintf("n%d.timesteps", n))
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range s.Timesteps() {
			if v != wantT[i] {
				t.Fatalf("n=%d: timestep %d is %v, want %v", n, i, v, wantT[i])
			}
		}
		wantS, _ := f.MustF32(t, fmt.Sprintf("n%d.sigmas", n))
		for i, v := range s.Sigmas() {
			if v != wantS[i] {
				t.Fatalf("n=%d: sigma %d is %v, want %v", n, i, v, wantS[i])
			}
		}
		quad, _, err := f.F64(fmt.Sprintf("n%d.coeffs", n))
		if err != nil {
			t.Fatal(err)
		}
		quad64, _, err := f.F64(fmt.Sprintf("n%d.coeffs64", n))
		if err != nil {
			t.Fatal(err)
		}
		worst32, worst64 := 0.0, 0.0
		for i := 0; i < n; i++ {
			c, err := s.Coefficients(i)
			if err != nil {
				t.Fatal(err)
			}
			scale := 0.0
			for j := range c {
				scale = max(scale, math.Abs(c[j]))
			}
			for j := 0; j < 4; j++ {
				got := 0.0
				if j < len(c) {
					got = c[j]
				}
				worst64 = max(worst64, math.Abs(got-quad64[i*4+j])/scale)
				worst32 = max(worst32, math.Abs(got-quad[i*4+j])/scale)
			}
		}
		t.Logf("n=%d: weights vs float64 quad %.3g, vs the reference's float32 quad %.3g (relative)", n, worst64, worst32)
		if worst64 > 1e-12 || worst32 > 1e-6 {
			t.Errorf("n=%d: weights off: %.3g vs float64 quad (≤ 1e-12), %.3g vs the reference (≤ 1e-6)", n, worst64, worst32)
		}
	}
}

// TestLMSStepsGolden runs whole LMS trajectories on the reference's model
// outputs: every scaled input bit-identical, and every step's output
// within 1e-6 of max|ref| (the reference's weights carry its quadrature
// error, which can move a float32 weight by an ulp).
func TestLMSStepsGolden(t *testing.T) {
	f := golden.Open(t, "lms", "lms.safetensors")
	for _, c := range []struct {
		name, pred string
		n          int
	}{{"run7", "epsilon", 7}, {"run100", "epsilon", 100}, {"run7v", "v_prediction", 7}} {
		t.Run(c.name, func(t *testing.T) {
			s := eliteLMS(t, c.pred)
			if err := s.SetTimesteps(c.n); err != nil {
				t.Fatal(err)
			}
			xs, shape := f.MustF32(t, c.name+".sample")
			ins, _ := f.MustF32(t, c.name+".scaled")
			eps, _ := f.MustF32(t, c.name+".model_output")
			outs, _ := f.MustF32(t, c.name+".prev_sample")
			per := len(xs) / shape[0]
			worstIn, worstOut := 0.0, 0.0
			exact := 0
			for i, ts := range s.Timesteps() {
				in, err := s.ScaleModelInput(xs[i*per:(i+1)*per], ts)
				if err != nil {
					t.Fatal(err)
				}
				worstIn = max(worstIn, golden.Compare(in, ins[i*per:(i+1)*per]).Rel())
				// Fed the reference's own sample, so each step is compared
				// on its own (no drift from earlier steps).
				y, err := s.Step(eps[i*per:(i+1)*per], ts, xs[i*per:(i+1)*per])
				if err != nil {
					t.Fatal(err)
				}
				want := outs[i*per : (i+1)*per]
				worstOut = max(worstOut, golden.Compare(y, want).Rel())
				for j := range y {
					if y[j] == want[j] {
						exact++
					}
				}
			}
			t.Logf("scaled input %.3g, step output %.3g (relative to max|ref|); %d of %d values bit-identical", worstIn, worstOut, exact, c.n*per)
			if worstIn > 0 || worstOut > 1e-6 {
				t.Errorf("scaled input %.3g (want 0), step output %.3g (want ≤ 1e-6)", worstIn, worstOut)
			}
		})
	}
}

// TestLMSStepsRefWeights: with the reference's own (quadrature) weights,
// every step of every run is bit-identical to diffusers': the arithmetic
// and its order are the reference's, and the weights are all that differ.
func TestLMSStepsRefWeights(t *testing.T) {
	f := golden.Open(t, "lms", "lms.safetensors")
	for _, c := range []struct {
		name, pred string
		n          int
	}{{"run7", "epsilon", 7}, {"run100", "epsilon", 100}, {"run7v", "v_prediction", 7}} {
		s := eliteLMS(t, c.pred)
		if err := s.SetTimesteps(c.n); err != nil {
			t.Fatal(err)
		}
		quad, _, err := f.F64(fmt.Sprintf("n%d.coeffs", c.n))
		if err != nil {
			t.Fatal(err)
		}
		s.weights = func(i int) []float64 { return quad[i*4 : i*4+min(i+1, LMSOrder)] }
		xs, shape := f.MustF32(t, c.name+".sample")
		eps, _ := f.MustF32(t, c.name+".model_output")
		outs, _ := f.MustF32(t, c.name+".prev_sample")
		per := len(xs) / shape[0]
		for i, ts := range s.Timesteps() {
			y, err := s.Step(eps[i*per:(i+1)*per], ts, xs[i*per:(i+1)*per])
			if err != nil {
				t.Fatal(err)
			}
			for j := range y {
				if y[j] != outs[i*per+j] {
					t.Fatalf("%s step %d value %d: %v, want %v", c.name, i, j, y[j], outs[i*per+j])
				}
			}
		}
	}
}

// TestLMSOracle: for data that is a single point x0 the exact noise
// prediction is (x − x0)/σ, the ODE path is x0 + σ·e0, and the derivative
// is constant; every Lagrange weight set sums to the step (σ_{i+1} − σ_i),
// so a correct LMS lands on x0 whatever the order and the step count.
func TestLMSOracle(t *testing.T) {
	x0 := []float64{0.7, -1.2, 0.05, 2.0, -0.4}
	e0 := []float64{1.1, 0.3, -0.8, -1.5, 0.9}
	for _, n := range []int{1, 2, 3, 5, 50, 1000} {
		s := eliteLMS(t, "epsilon")
		if err := s.SetTimesteps(n); err != nil {
			t.Fatal(err)
		}
		sg := float64(s.InitNoiseSigma())
		x := make([]float32, len(x0))
		for i := range x {
			x[i] = float32(x0[i] + sg*e0[i])
		}
		sig := s.Sigmas()
		for k, ts := range s.Timesteps() {
			eps := make([]float32, len(x))
			for i := range eps {
				eps[i] = float32((float64(x[i]) - x0[i]) / float64(sig[k]))
			}
			var err error
			if x, err = s.Step(eps, ts, x); err != nil {
				t.Fatal(err)
			}
		}
		worst := 0.0
		for i := range x {
			worst = max(worst, math.Abs(float64(x[i])-x0[i]))
		}
		if worst > 1e-4 {
			t.Errorf("n=%d: ends %.3g from x0", n, worst)
		}
	}
}

// TestLagrangeIntegral checks the exact integral on polynomials it must
// reproduce: Σ_j w_j·p(x_j) = ∫ p for any p of degree < len(x).
func TestLagrangeIntegral(t *testing.T) {
	x := []float64{3.1, 2.9, 2.55, 2.0}
	a, b := 3.1, 3.45
	p := func(u float64) float64 { return 1 - 2*u + 0.5*u*u - 0.25*u*u*u }
	P := func(u float64) float64 { return u - u*u + u*u*u/6 - u*u*u*u/16 }
	got := 0.0
	for j := range x {
		got += LagrangeIntegral(x, j, a, b) * p(x[j])
	}
	if want := P(b) - P(a); math.Abs(got-want) > 1e-12*math.Abs(want) {
		t.Errorf("∫p = %v, want %v", got, want)
	}
}

func TestLMSErrors(t *testing.T) {
	s := eliteLMS(t, "epsilon")
	x := []float32{1, 2}
	if _, err := s.Step(x, 999, x); err == nil {
		t.Error("Step before SetTimesteps: no error")
	}
	if err := s.SetTimesteps(0); err == nil {
		t.Error("0 steps: no error")
	}
	if err := s.SetTimesteps(1001); err == nil {
		t.Error("1001 steps: no error")
	}
	if err := s.SetTimesteps(10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Step(x, 998.5, x); err == nil {
		t.Error("a timestep not in the schedule: no error")
	}
	if _, err := s.ScaleModelInput(x, 3); err == nil {
		t.Error("ScaleModelInput at a timestep not in the schedule: no error")
	}
	if _, err := s.Step(x[:1], 999, x); err == nil {
		t.Error("mismatched lengths: no error")
	}
	c, _ := DefaultConfig(ClassLMS)
	c.PredictionType = "sample"
	if _, err := New(c); err == nil {
		t.Error("prediction_type sample: no error")
	}
	// Read from a PNDM config (as the pipeline does): LMS keeps linspace.
	cfg, err := ParseConfigAs([]byte(`{"_class_name":"PNDMScheduler","beta_start":0.00085,"beta_end":0.012,"beta_schedule":"scaled_linear","steps_offset":1,"timestep_spacing":"leading","skip_prk_steps":true}`), ClassLMS)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TimestepSpacing != "linspace" {
		t.Errorf("LMS from a PNDM config: spacing %q", cfg.TimestepSpacing)
	}
}
