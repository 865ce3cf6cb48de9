// paritysuite.go runs the kernel parity tables (paritycases.go) outside
// `go test`: every case on every kernel variant the adapter offers (f32
// arithmetic on f32 and on fp16 weights, f16 arithmetic where shader-f16
// compiles, the subgroup kernels where the device probed a subgroup size),
// each against the CPU reference, so that one binary can prove a real GPU
// computes what the engine expects (`harmony selftest`).
package kernels

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"runtime"
	"strings"
	"sync"
	"time"

	"harmony/engine/cpu"
	"harmony/engine/gpu"
	"harmony/engine/tensor"
)

// Parity variants: the backend configurations a case runs on.
const (
	VariantF32        = "f32"         // f32 weights, f32 arithmetic, no subgroups
	VariantFP16Weight = "fp16-weight" // fp16 weights widened with unpack2x16float
	VariantF16Arith   = "f16-arith"   // fp16 weights, f16 arithmetic (shader-f16)
	// The subgroup variants are "subgroup-N" (N the device's subgroup
	// size), and "f16-arith+subgroup-N" where both are offered.
)

// ParityCase is one case of the parity tables on one kernel variant.
type ParityCase struct {
	Family  string // linear, conv2d, attention, group_norm, layer_norm, activate, …
	Variant string // VariantF32, VariantFP16Weight, VariantF16Arith, subgroup-N, …
	Name    string
	tune    func(b *Backend)             // the variant's backend settings
	run     func(r reporter, b *Backend) // the case, reporting to r
}

// ID is family/variant/name.
func (c ParityCase) ID() string { return c.Family + "/" + c.Variant + "/" + c.Name }

// ParityResult is the outcome of one case.
type ParityResult struct {
	Family  string        `json:"family"`
	Variant string        `json:"variant"`
	Name    string        `json:"name"`
	Elapsed time.Duration `json:"-"`
	Seconds float64       `json:"seconds"`
	Log     []string      `json:"log,omitempty"` // the checks' figures (max|err| against tolerance)
	Err     error         `json:"-"`
	Error   string        `json:"error,omitempty"`
}

// ParityCases lists every case of the parity tables on every variant that
// info offers: the f32 variant for every family; the dense cases (Linear,
// Conv2D in both its TAPS and loop forms) with fp16 weights on the unpack
// path; with shader-f16, those again with f16 arithmetic; with a probed
// subgroup size, every dense case on the subgroup kernels. GroupNorm and
// LayerNorm run on their multi-pass and their fused paths.
func ParityCases(info gpu.Info) []ParityCase {
	var out []ParityCase
	add := func(family, variant, name string, tune func(*Backend), run func(reporter, *Backend)) {
		out = append(out, ParityCase{Family: family, Variant: variant, Name: name, tune: tune, run: run})
	}
	plain := func(b *Backend) {}
	sgSize := int(info.SubgroupSize)
	type denseVariant struct {
		name     string
		f16Arith bool
		sg       int
		weights  func(tensor.DType) bool // which weight types run on it
	}
	f16Only := func(dt tensor.DType) bool { return dt == tensor.F16 }
	vars := []denseVariant{
		{VariantF32, false, 0, func(dt tensor.DType) bool { return dt != tensor.F16 }},
		{VariantFP16Weight, false, 0, f16Only},
	}
	if info.ShaderF16 {
		vars = append(vars, denseVariant{VariantF16Arith, true, 0, f16Only})
	}
	if sgSize > 0 {
		vars = append(vars, denseVariant{fmt.Sprintf("subgroup-%d", sgSize), false, sgSize, func(tensor.DType) bool { return true }})
		if info.ShaderF16 {
			vars = append(vars, denseVariant{fmt.Sprintf("f16-arith+subgroup-%d", sgSize), true, sgSize, f16Only})
		}
	}
	for _, v := range vars {
		tune := func(b *Backend) { b.F16Arith, b.Subgroup = v.f16Arith, v.sg }
		for _, tc := range linearCases {
			if v.weights(tc.wdt) {
				add("linear", v.name, tc.name, tune, func(r reporter, b *Backend) { logRel(r, runLinear(denseOracle(r, b), tc)) })
			}
		}
		for _, taps := range []bool{true, false} {
			for _, tc := range convCases {
				if !v.weights(tc.wdt) {
					continue
				}
				tune := func(b *Backend) { b.F16Arith, b.Subgroup, b.cfg.convTaps = v.f16Arith, v.sg, taps }
				add("conv2d", v.name, fmt.Sprintf("%s/taps=%v", tc.name, taps), tune, func(r reporter, b *Backend) { logRel(r, runConv(denseOracle(r, b), tc)) })
			}
		}
	}
	for _, tc := range attnCases {
		add("attention", VariantF32, tc.name, plain, func(r reporter, b *Backend) {
			e, ep := runAttention(denseOracle(r, b), tc)
			r.Logf("max err / max|ref|: out %.2g, probs %.2g", e, ep)
		})
	}
	for _, fused := range []bool{false, true} {
		path := "multipass"
		lim := -1
		if fused {
			path, lim = "fused", 1<<30
		}
		tune := func(b *Backend) { b.cfg.gnFusedMax, b.cfg.gnFusedMaxCPU, b.cfg.lnRowMax = lim, lim, lim }
		for _, c := range groupNormCases {
			add("group_norm", VariantF32, path+"/"+c.String(), tune, func(r reporter, b *Backend) { c.checkGroupNorm(elemParity(r, b)) })
		}
		for _, c := range layerNormCases {
			add("layer_norm", VariantF32, path+"/"+c.String(), tune, func(r reporter, b *Backend) { c.checkLayerNorm(elemParity(r, b)) })
		}
	}
	for _, a := range activations {
		for i, rg := range actRanges {
			add("activate", VariantF32, fmt.Sprintf("%v on [%g, %g)", a, rg[0], rg[1]), plain, func(r reporter, b *Backend) { checkActivate(elemParity(r, b), a, i) })
		}
	}
	for _, c := range scaleCases {
		add("scale", VariantF32, fmt.Sprint(c.shape), plain, func(r reporter, b *Backend) { c.check(elemParity(r, b)) })
	}
	for _, c := range gegluCases {
		add("geglu", VariantF32, fmt.Sprint(c.shape), plain, func(r reporter, b *Backend) { c.check(elemParity(r, b)) })
	}
	for _, c := range binaryCases {
		add("add/mul", VariantF32, fmt.Sprintf("%v ∘ %v", c.a, c.b), plain, func(r reporter, b *Backend) { c.check(elemParity(r, b)) })
	}
	for _, c := range upsampleCases {
		add("upsample2x", VariantF32, fmt.Sprint(c.shape), plain, func(r reporter, b *Backend) { c.check(elemParity(r, b)) })
	}
	for _, c := range concatCases {
		add("concat/slice", VariantF32, fmt.Sprintf("axis %d %v", c.axis, c.parts), plain, func(r reporter, b *Backend) { c.check(elemParity(r, b)) })
	}
	for _, c := range embeddingCases {
		variant := VariantF32
		if c.dt == tensor.F16 {
			variant = VariantFP16Weight
		}
		add("embedding", variant, fmt.Sprintf("[%d, %d] off %d", c.v, c.d, c.off), plain, func(r reporter, b *Backend) { c.check(elemParity(r, b)) })
	}
	for _, c := range localMixCases {
		add("local_mix", VariantF32, c.name(), plain, func(r reporter, b *Backend) { c.check(elemParity(r, b)) })
	}
	add("local_mix", VariantF32, "negative gate", plain, func(r reporter, b *Backend) { checkLocalMixNegativeGate(elemParity(r, b)) })
	add("convert", VariantF32, "f32 ↔ f16, specials, views, bit-pattern sweep", plain, func(r reporter, b *Backend) { checkConvert(elemParity(r, b)) })
	for _, c := range timestepCases {
		add("timestep", VariantF32, fmt.Sprintf("dim %d flip %v shift %g", c.dim, c.flip, c.shift), plain, func(r reporter, b *Backend) { c.check(elemParity(r, b)) })
	}
	return out
}

func logRel(r reporter, e float64) { r.Logf("max err / max|ref| = %.2g", e) }

// denseOracle is the dense and attention helper on backend b.
func denseOracle(r reporter, b *Backend) *oracle {
	return &oracle{t: r, g: b, c: cpu.New(), rng: rand.New(rand.NewSource(1))}
}

// elemParity is the helper of the other families on backend b.
func elemParity(r reporter, b *Backend) *parity {
	return &parity{t: r, ctx: context.Background(), ref: cpu.New(), gpu: b, rng: rand.New(rand.NewSource(1))}
}

// RunParity runs cases on dev in order, each on a fresh guarded backend
// (its own error state, the variant's settings), and returns their
// results; each, when not nil, is told of every result as it comes. A
// case's panic is its failure, not the caller's. It stops early when ctx
// is done.
func RunParity(ctx context.Context, dev *gpu.Device, cases []ParityCase, each func(ParityResult)) []ParityResult {
	var out []ParityResult
	for _, c := range cases {
		if ctx.Err() != nil {
			break
		}
		res := runCase(dev, c)
		if each != nil {
			each(res)
		}
		out = append(out, res)
	}
	return out
}

// runCase runs one case on its own goroutine, as the testing package
// would: a Fatalf ends the goroutine (runtime.Goexit), and a panic is
// recovered into the result.
func runCase(dev *gpu.Device, c ParityCase) ParityResult {
	r := &caseReporter{}
	b := &Backend{dev: dev, cfg: defaultTuning(), guard: true}
	c.tune(b)
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				r.Errorf("panic: %v", p)
			}
		}()
		c.run(r, b)
		if err := b.Err(); err != nil {
			r.Errorf("gpu backend: %v", err)
		}
	}()
	<-done
	res := ParityResult{Family: c.Family, Variant: c.Variant, Name: c.Name, Elapsed: time.Since(start), Log: r.logs}
	res.Seconds = res.Elapsed.Seconds()
	if len(r.errs) > 0 {
		res.Err = errors.New(strings.Join(r.errs, "; "))
		res.Error = res.Err.Error()
	}
	return res
}

// caseReporter collects one case's logs and failures.
type caseReporter struct {
	mu   sync.Mutex
	logs []string
	errs []string
}

func (r *caseReporter) Helper() {}

func (r *caseReporter) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *caseReporter) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// Fatalf records the failure and ends the case's goroutine.
func (r *caseReporter) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}
