// parts.go registers the tiny parts: the kernel self-check, the kernel
// parity tables on every variant the adapter offers, and the tiny
// pipeline's goldens (plain BLIP-Diffusion in f32 and f16 weights, and the
// Harmony runs of harmony/summary.json).
package selftest

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"harmony/engine/kernels"
	"harmony/engine/pipeline"
	"harmony/loader"
)

// quickRuns are the Harmony golden runs Quick keeps: one with every stage
// of the method (orthogonalised embedding, masks, key-value swap).
var quickRuns = map[string]bool{"ortho_swap_kv": true}

func init() {
	Register(Part{Name: "selfcheck", Summary: "every kernel once at small odd sizes against the CPU reference", Run: runSelfCheck})
	Register(Part{Name: "parity", Summary: "the kernel parity tables on every variant the adapter offers", Run: runParity})
	Register(Part{Name: "goldens", Summary: "the tiny pipeline against the PyTorch reference's goldens", Run: runGoldens})
}

func runSelfCheck(ctx context.Context, env *Env, add func(Check)) {
	for _, r := range kernels.SelfCheck(ctx, kernels.New(env.Dev)) {
		add(Check{Name: r.Name, Seconds: r.Elapsed.Seconds(), Detail: r.Detail(), Err: r.Err})
	}
}

func runParity(ctx context.Context, env *Env, add func(Check)) {
	cases := kernels.ParityCases(env.Dev.Info())
	env.Log("parity: %d cases", len(cases))
	kernels.RunParity(ctx, env.Dev, cases, func(r kernels.ParityResult) {
		c := Check{Name: r.Family + " " + r.Name, Variant: r.Variant, Seconds: r.Seconds, Log: r.Log, Err: r.Err}
		if len(r.Log) > 0 {
			c.Detail = r.Log[len(r.Log)-1]
		}
		add(c)
	})
}

// runGoldens loads the tiny model (f32 weights, then f16) and compares the
// golden calls with the reference.
func runGoldens(ctx context.Context, env *Env, add func(Check)) {
	dir := env.TestData
	runs, err := pipeline.GoldenRuns(dir)
	if err != nil {
		add(Check{Name: "harmony runs", Err: err})
	}
	for _, prec := range []loader.Precision{loader.PrecisionF32, loader.PrecisionF16} {
		start := time.Now()
		m, err := tinyModel(ctx, env, dir, prec)
		if err != nil {
			add(Check{Name: "load tiny model", Variant: string(prec), Seconds: time.Since(start).Seconds(), Err: err})
			continue
		}
		add(Check{Name: "load tiny model", Variant: string(prec), Seconds: time.Since(start).Seconds()})
		// The plain call.
		golden(ctx, add, "plain BLIP-Diffusion", string(prec), m, func() (pipeline.Options, error) {
			o, err := pipeline.GoldenOptions(dir)
			o.Method = pipeline.MethodBLIPDiffusion
			return o, err
		}, func(res *pipeline.Result) []pipeline.GoldenCheck {
			if prec == loader.PrecisionF16 {
				return pipeline.CheckGoldenF16(dir, res, 3e-3)
			}
			return pipeline.CheckGoldenPlain(dir, res, 1e-4)
		})
		// The Harmony runs reproduce the reference in f32 only.
		if prec == loader.PrecisionF32 {
			for _, run := range runs {
				if env.Quick && !quickRuns[run.Name] {
					continue
				}
				golden(ctx, add, "harmony "+run.Name, string(prec), m, func() (pipeline.Options, error) {
					return pipeline.GoldenRunOptions(dir, run)
				}, func(res *pipeline.Result) []pipeline.GoldenCheck {
					return pipeline.CheckGoldenRun(dir, run, res)
				})
			}
		}
		m.Close()
	}
}

// tinyModel loads blipdiffusion-tiny below dir onto the device as the CLI
// loads a model.
func tinyModel(ctx context.Context, env *Env, dir string, p loader.Precision) (*pipeline.Model, error) {
	b := kernels.New(env.Dev)
	lm, err := loader.Load(ctx, loader.NewDirSource(filepath.Join(dir, "blipdiffusion-tiny")), b, &loader.Options{Precision: p, Shapes: pipeline.ExpectedShapes})
	if err != nil {
		return nil, err
	}
	return pipeline.Assemble(b, pipeline.ComponentsFromLoader(lm))
}

// golden runs one generation and records its comparisons as one check.
func golden(ctx context.Context, add func(Check), name, variant string, m *pipeline.Model,
	options func() (pipeline.Options, error), check func(*pipeline.Result) []pipeline.GoldenCheck) {
	start := time.Now()
	c := Check{Name: name, Variant: variant}
	o, err := options()
	var res *pipeline.Result
	if err == nil {
		res, err = pipeline.Generate(ctx, m, o)
	}
	c.Seconds = time.Since(start).Seconds()
	if err != nil {
		c.Err = err
		add(c)
		return
	}
	var errs []error
	worst := 0.0
	for _, g := range check(res) {
		if g.Err != nil {
			errs = append(errs, g.Err)
			c.Log = append(c.Log, "FAIL "+g.Err.Error())
			continue
		}
		c.Log = append(c.Log, fmt.Sprintf("%s: max|Δ| %.3g (max|ref| %.3g, tolerance %.3g)", g.What, g.MaxAbs, g.MaxRef, g.Tol))
		if g.Tol > 0 {
			worst = max(worst, g.MaxAbs/g.Tol)
		}
	}
	c.Detail = fmt.Sprintf("%d comparisons, worst at %.2g of its tolerance; %d UNet calls of batch %d, denoise %v",
		len(c.Log), worst, res.Timings.Calls, res.Timings.Batch, res.Timings.Denoise.Round(time.Millisecond))
	c.Err = joinErrs(errs)
	add(c)
}
